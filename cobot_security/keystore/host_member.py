"""A host's requests to the authority, made where its private keys live and never leave.

* :func:`make_enrollment_request` (``host request``): a key pair per enclave of the host, generated
  here and kept 0600 in ``.cobot_security/pending/`` until its certificate arrives, and a request
  file of CSRs for the operator to carry to the CA machine;
* :func:`make_renewal_request` (``keystore_manager`` role member): for each enclave inside its renew
  window a new key (pending) and a CSR, each item signed with the enclave's *current* key next to
  its current certificate (proof of possession, authentic over any transport); ``kind="crl"`` asks
  for the current CRL with one item proving an identity of the host;
* :func:`plan_member`: which enclaves of the host are due, expired (must enroll again by hand) or
  missing, and whether the CRL should be fetched.

Pending keys are written through a host keystore transaction (our records, not the public tree).
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore import pki
from cobot_security.keystore.crl import crl_due
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.host_documents import HostRequest, RequestItem
from cobot_security.keystore.host_state import HostState, read_host_state
from cobot_security.keystore.integrity import hash_keystore_files
from cobot_security.keystore.layout import CERT, KEY, KeystoreLayout
from cobot_security.keystore.revocation import load_crl
from cobot_security.keystore.rotation import is_due
from cobot_security.keystore.signed_json import sign_bytes
from cobot_security.keystore.store import Keystore
from cobot_security.keystore.transaction import KeystoreTransaction
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.policy.permissions import subject_name


@dataclass(frozen=True)
class MemberPlan:
    """The state of a host's enclaves at ``now`` (see :func:`plan_member`)."""

    now: _dt.datetime
    valid: dict[str, _dt.datetime]  #: enclave → not_after, for every readable, unexpired certificate
    due: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    crl_due: bool = False


def plan_member(layout: KeystoreLayout, policy: WorkcellPolicy, host: str, now: _dt.datetime) -> MemberPlan:
    """Due, expired and missing enclaves of ``host`` in its keystore, and whether the CRL is due.

    An unreadable certificate counts as missing (a bundle or a new enrollment repairs it).
    """
    valid: dict[str, _dt.datetime] = {}
    due, expired, missing = [], [], []
    for enclave in policy.enclaves_on(host):
        directory = layout.enclave_dir(enclave.path)
        try:
            cert = pki.load_certificate(read_keystore_file(layout, directory / CERT), directory / CERT)
        except (KeystoreError, FileNotFoundError):
            missing.append(enclave.path)
            continue
        if now >= cert.not_valid_after_utc:
            expired.append(enclave.path)
            continue
        valid[enclave.path] = cert.not_valid_after_utc
        if is_due(cert.not_valid_after_utc, policy.lifetimes.renew_before, now):
            due.append(enclave.path)
    try:
        crl = load_crl(layout)
    except KeystoreError:
        crl = None
    return MemberPlan(now, valid, tuple(due), tuple(expired), tuple(missing), crl_due(crl, now))


def _pending_key(tx: KeystoreTransaction, path: str) -> pki.PrivateKey:
    """The key waiting for ``path``'s certificate, or a new one written 0600 from creation."""
    pending = tx.layout.pending_key(path)
    if os.path.lexists(pending):
        try:
            return pki.load_private_key(read_keystore_file(tx.layout, pending), None, pending)
        except KeystoreError:
            pass  # unreadable: replaced by a new one
    key = pki.generate_private_key()
    tx.write_file(pending, pki.private_key_pem(key, None), 0o600)
    return key


def _begin(tx: KeystoreTransaction, host: str) -> HostState | None:
    state = read_host_state(tx.live)
    if state is not None and state.host != host:
        raise InputError(tx.live.host_file, "host", f"host {state.host} (this keystore's)", repr(host))
    try:
        tx.begin_changes()
        for directory in (tx.layout.meta_dir, tx.layout.pending_dir):
            if not directory.is_dir():
                os.mkdir(directory, 0o700)
            os.chmod(directory, 0o700)
    except OSError as exc:
        raise KeystoreError(exc.filename or tx.layout.pending_dir,
                            f"cannot prepare the request: {exc.strerror}") from exc
    return state


def make_enrollment_request(keystore: Keystore, policy: WorkcellPolicy, host: str, now: _dt.datetime) -> HostRequest:
    """Keys for every enclave of ``host`` (born here, pending) and the request of their certificates.

    :raises InputError: ``host`` is not a host of the policy, has no enclave, or the keystore is another host's.
    :raises KeystoreError: the keystore cannot be changed.
    """
    if policy.host(host) is None:
        known = ", ".join(h.name for h in policy.hosts) or "none (the policy has no hosts:)"
        raise InputError(policy.source, "hosts", f"a host of the policy ({known})", repr(host))
    enclaves = policy.enclaves_on(host)
    if not enclaves:
        raise InputError(policy.source, "enclaves", f"at least one enclave with hosts: [{host}]", "none")
    with keystore.transaction(now, "host_request", needs_ca=False, host_keystore=True) as tx:
        state = _begin(tx, host)
        items = tuple(RequestItem(e.path, csr=pki.make_csr(subject_name(e.path), _pending_key(tx, e.path)))
                      for e in enclaves)
        request = HostRequest("enrollment", host, secrets.token_hex(16), now, items,
                              hash_keystore_files(tx.live, exclude_keys=True))
        installed = state.installed if state is not None else None
        tx.write_file(tx.layout.host_file, HostState(host, request.nonce, "enrollment", installed).to_bytes(), 0o600)
        tx.audit("host_request", "/", {"host": host, "kind": "enrollment", "enclaves": str(len(items)),
                                       "fingerprint": request.fingerprint()})
    return request


def _current(layout: KeystoreLayout, path: str) -> tuple[bytes, pki.PrivateKey]:
    directory = layout.enclave_dir(path)
    cert_pem = read_keystore_file(layout, directory / CERT)
    key = pki.load_private_key(read_keystore_file(layout, directory / KEY), None, directory / KEY)
    return cert_pem, key


def _signed(request: HostRequest, keys: dict[str, pki.PrivateKey]) -> HostRequest:
    items = tuple(replace(item, signature=sign_bytes(request.signed_bytes(item), keys[item.enclave]))
                  for item in request.items)
    return replace(request, items=items)


def make_renewal_request(keystore: Keystore, host: str, enclaves: Sequence[str], now: _dt.datetime) -> HostRequest:
    """New keys (pending) and a renewal request for ``enclaves``, each item signed by the current key.

    :raises KeystoreError: an enclave's current certificate or key cannot be read, or the disk refuses.
    """
    with keystore.transaction(now, "host_request", needs_ca=False, host_keystore=True) as tx:
        _begin(tx, host)
        current = {path: _current(tx.layout, path) for path in enclaves}
        items = tuple(RequestItem(path, csr=pki.make_csr(subject_name(path), _pending_key(tx, path)),
                                  certificate=current[path][0]) for path in enclaves)
        request = HostRequest("renewal", host, secrets.token_hex(16), now, items,
                              hash_keystore_files(tx.live, exclude_keys=True))
        tx.audit("host_request", "/", {"host": host, "kind": "renewal", "enclaves": ",".join(enclaves)})
    return _signed(request, {path: key for path, (_cert, key) in current.items()})


def make_crl_request(layout: KeystoreLayout, host: str, enclave: str, now: _dt.datetime) -> HostRequest:
    """A request for the current CRL (and anything else that changed), proven by ``enclave``'s identity.

    Reads only: nothing is written.

    :raises KeystoreError: the enclave's certificate or key cannot be read.
    """
    cert_pem, key = _current(layout, enclave)
    request = HostRequest("crl", host, secrets.token_hex(16), now, (RequestItem(enclave, certificate=cert_pem),),
                          hash_keystore_files(layout, exclude_keys=True))
    return _signed(request, {enclave: key})
