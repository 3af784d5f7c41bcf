"""The CA machine's side of a multi-host cell: bundles, enrollment answers, renewals and CRLs for hosts.

Each call is one keystore transaction on the CA keystore that stages the host's view
(:mod:`cobot_security.keystore.host_view`) and answers with a package sealed by the permissions CA
(:mod:`cobot_security.keystore.host_documents`):

* :func:`bundle_host` — everything ``host`` needs; enclaves whose key the host already holds (born
  there) travel without key, the others with the CA keystore's key (key_origin ``keystore``);
* :func:`answer_request` — an enrollment (request file, CSRs of keys born on the host), a renewal
  (each item proves the current identity) or a CRL request: checked by
  :mod:`cobot_security.keystore.host_checks`, issued from the CSR's public key (key_origin
  ``host``), answered with the files in which the host's tree differs from the view.

Before answering, the view follows the policy: public certificates, CRL and governance are the CA
keystore's, enclaves no longer on the host are dropped, grants whose policy changed are signed
again.  The answer carries the host integrity manifest signed over the view (keys excluded).
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509

from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore import pki, smime
from cobot_security.keystore.authority import CaKeys
from cobot_security.keystore.enclaves import issue_material
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.host_checks import (
    FILE_REQUEST_MAX_AGE,
    GRAPH_REQUEST_MAX_AGE,
    AuthorityFacts,
    check_csr,
    check_enrollment_item,
    check_identity,
    check_renewal_item,
    check_request,
)
from cobot_security.keystore.host_documents import HostPackage, HostRequest
from cobot_security.keystore.host_view import (
    VIEW_FILE,
    HostView,
    put_enclave,
    read_view,
    remove_enclave,
    sync_public,
    view_enclave_files,
)
from cobot_security.keystore.integrity import LINK_PREFIX, hash_keystore_files, sign_integrity
from cobot_security.keystore.layout import CERT, KEY, PERMISSIONS_P7S, PERMISSIONS_XML, KeystoreLayout
from cobot_security.keystore.manifest import EnclaveRecord
from cobot_security.keystore.revocation import load_crl
from cobot_security.keystore.signed_json import seal_document
from cobot_security.keystore.store import Keystore
from cobot_security.keystore.transaction import KeystoreTransaction
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.policy.permissions import compile_permissions, grant_digest


@dataclass(frozen=True)
class Answer:
    """A sealed package for ``host`` and what it contains."""

    host: str
    document: bytes
    package: HostPackage
    issued: tuple[str, ...] = ()
    refused: Mapping[str, str] = field(default_factory=dict)


def _facts(keystore: Keystore, policy: WorkcellPolicy, host: str, now: _dt.datetime) -> AuthorityFacts:
    return AuthorityFacts(policy, keystore.ca_certificates().identity, load_crl(keystore.layout),
                          read_view(keystore.layout, host), now)


def _check_host(policy: WorkcellPolicy, host: str) -> None:
    if policy.host(host) is None:
        known = ", ".join(h.name for h in policy.hosts) or "none (the policy has no hosts:)"
        raise InputError(policy.source, "hosts", f"a host of the policy ({known})", repr(host))


def _follow_policy(tx: KeystoreTransaction, view: KeystoreLayout, record: HostView, policy: WorkcellPolicy,
                   host: str) -> HostView:
    """Public files from the CA keystore, unassigned enclaves out, changed grants signed again."""
    sync_public(tx.layout, view)
    wanted = {enclave.path for enclave in policy.enclaves_on(host)}
    gone = {path for path in record.enclaves if path not in wanted}
    for path in sorted(gone):
        remove_enclave(view, path)
    record = record.without(gone)
    for path, entry in sorted(record.enclaves.items()):
        enclave = policy.enclave(path)
        assert enclave is not None
        digest = grant_digest(policy, enclave)
        if entry.grant_sha256 == digest:
            continue
        cert_pem, _xml, _p7s = view_enclave_files(view, path)
        cert = pki.load_certificate(cert_pem, view.enclave_dir(path) / CERT)
        xml = compile_permissions(policy, enclave, cert.not_valid_before_utc, cert.not_valid_after_utc)
        put_enclave(view, path, cert_pem, xml, smime.sign_smime(xml, tx.ca.permissions.cert, tx.ca.permissions.key))
        record = record.with_record(path, EnclaveRecord(entry.serial, entry.not_after, digest, entry.key_origin))
        tx.audit("host_resign", path, {"host": host, "serial": entry.serial, "grant_sha256": digest})
    return record


def _seal(tx: KeystoreTransaction, view: KeystoreLayout, record: HostView, kind: str, policy: WorkcellPolicy,
          nonce: str, have: Mapping[str, str] | None, keys: Mapping[str, bytes],
          refused: Mapping[str, str]) -> tuple[bytes, HostPackage]:
    """The package: the view's files (all, or those differing from ``have``) and its signed manifest."""
    ca: CaKeys = tx.ca
    tree = hash_keystore_files(view)
    files = {path: read_keystore_file(view, view.root / path) for path, digest in tree.items()
             if not digest.startswith(LINK_PREFIX) and (have is None or have.get(path) != digest)}
    integrity = sign_integrity(tree, ca.permissions.cert, ca.permissions.key, tx.now, host=record.host)
    package = HostPackage(kind, record.host, policy.name, tx.now, nonce, integrity, files, dict(keys),
                          dict(record.enclaves), dict(refused))
    tx.write_file(view.root / VIEW_FILE, record.to_bytes(), 0o600)
    return seal_document(package.to_payload(), ca.permissions.cert, ca.permissions.key), package


def _bundle_enclave(tx: KeystoreTransaction, view: KeystoreLayout, record: HostView, path: str,
                    facts: AuthorityFacts) -> tuple[HostView, bytes | None]:
    """Keep a host-born enclave the host can still use; otherwise ship the CA keystore's copy with its key."""
    entry = record.enclaves.get(path)
    if entry is not None and entry.key_origin == "host":
        cert = pki.load_certificate(view_enclave_files(view, path)[0], view.enclave_dir(path) / CERT)
        if cert.not_valid_before_utc <= facts.now < cert.not_valid_after_utc and not _revoked(facts, cert):
            return record, None
    live = tx.layout.enclave_dir(path)
    if not os.path.lexists(live / CERT) or not os.path.lexists(live / KEY):
        raise KeystoreError(live, f"enclave {path} is not in the CA keystore with its key: "
                                  "run cobot-security reconcile first")
    cert_pem, key_pem, xml, p7s = (read_keystore_file(tx.layout, live / name)
                                   for name in (CERT, KEY, PERMISSIONS_XML, PERMISSIONS_P7S))
    cert = pki.load_certificate(cert_pem, live / CERT)
    put_enclave(view, path, cert_pem, xml, p7s)
    enclave = facts.policy.enclave(path)
    assert enclave is not None
    new = EnclaveRecord(format(cert.serial_number, "x"), cert.not_valid_after_utc,
                        grant_digest(facts.policy, enclave), "keystore")
    return record.with_record(path, new), key_pem


def _revoked(facts: AuthorityFacts, cert: x509.Certificate) -> bool:
    return facts.crl is not None and facts.crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def bundle_host(keystore: Keystore, policy: WorkcellPolicy, host: str, now: _dt.datetime) -> Answer:
    """Everything ``host`` needs, sealed for ``host install`` (see the module docstring).

    :raises InputError: ``host`` is not one of the policy's.
    :raises KeystoreError: an enclave of the host is missing from the CA keystore, or the disk refuses.
    :raises PassphraseError: the CA keys cannot be decrypted.
    """
    _check_host(policy, host)
    with keystore.transaction(now, "host_bundle") as tx:
        facts = _facts(keystore, policy, host, now)
        view = KeystoreLayout(tx.stage_directory(tx.layout.host_view(host)))
        record = _follow_policy(tx, view, facts.view, policy, host)
        keys: dict[str, bytes] = {}
        for enclave in policy.enclaves_on(host):
            record, key = _bundle_enclave(tx, view, record, enclave.path, facts)
            if key is not None:
                keys[enclave.path] = key
        document, package = _seal(tx, view, record, "bundle", policy, secrets.token_hex(16), None, keys, {})
        tx.audit("host_bundle", "/", {"host": host, "enclaves": str(len(package.records)),
                                      "with_keys": ",".join(sorted(keys))})
    return Answer(host, document, package)


def _issue(tx: KeystoreTransaction, view: KeystoreLayout, record: HostView, request: HostRequest,
           policy: WorkcellPolicy, accepted: list[str]) -> HostView:
    for item in request.items:
        if item.enclave not in accepted:
            continue
        csr, _reason = check_csr(item)
        enclave = policy.enclave(item.enclave)
        assert csr is not None and enclave is not None
        material = issue_material(enclave, policy, tx.now, tx.ca, csr.public_key())  # type: ignore[arg-type]
        put_enclave(view, item.enclave, material.cert_pem, material.permissions_xml, material.permissions_p7s)
        old = record.enclaves.get(item.enclave)
        record = record.with_record(item.enclave, material.record("host"))
        tx.audit("host_issue", item.enclave, {**material.audit_details(), "host": request.host,
                                              "request": request.kind, "key_origin": "host",
                                              "old_serial": old.serial if old else ""})
    return record


def _judge_items(request: HostRequest, facts: AuthorityFacts) -> dict[str, str]:
    """Enclave → reason for every refused item (none for a CRL request's own items when valid)."""
    refused: dict[str, str] = {}
    for item in request.items:
        if request.kind == "enrollment":
            reason = check_enrollment_item(request.host, item, facts)
        elif request.kind == "renewal":
            reason = check_renewal_item(request, item, facts)
        else:
            reason = check_identity(request, item, facts)[1]
        if reason:
            refused[item.enclave] = reason
    return refused


def answer_request(keystore: Keystore, policy: WorkcellPolicy, request: HostRequest, now: _dt.datetime, *,
                   source: str, by_hand: bool) -> Answer:
    """Check ``request`` and answer it (see the module docstring); one transaction.

    ``by_hand`` (``host sign`` of a request file): any refused item refuses the whole request, and
    an enrollment is accepted; over the graph an enrollment is refused (it carries no identity) and
    refused items are named in the answer while the others are issued.

    :raises InputError: unknown host, a request too old, from the future or replayed, an
        enrollment over the graph, or (``by_hand``) a refused item — naming what is wrong.
    :raises KeystoreError: the CA keystore cannot be read or changed.
    :raises PassphraseError: the CA keys cannot be decrypted.
    """
    if request.kind == "enrollment" and not by_hand:
        raise InputError(source, "kind", "renewal or crl over the graph (enrollment only by hand: host sign)",
                         "enrollment")
    if request.kind != "crl" and not request.items:
        raise InputError(source, "items", "at least one enclave", "none")
    with keystore.transaction(now, f"host_{request.kind}") as tx:
        facts = _facts(keystore, policy, request.host, now)
        check_request(request, policy, facts.view, now, FILE_REQUEST_MAX_AGE if by_hand else GRAPH_REQUEST_MAX_AGE,
                      source)
        if request.kind == "crl" and not request.items:
            raise InputError(source, "items", "one item proving an identity of the host", "none")
        refused = _judge_items(request, facts)
        if by_hand and refused:
            enclave, reason = next(iter(refused.items()))
            raise InputError(source, f"items (enclave {enclave})", "a request the policy allows", reason)
        accepted = [i.enclave for i in request.items if i.enclave not in refused and request.kind != "crl"]
        view = KeystoreLayout(tx.stage_directory(tx.layout.host_view(request.host)))
        record = _follow_policy(tx, view, facts.view, policy, request.host)
        record = _issue(tx, view, record, request, policy, accepted)
        record = record.with_nonce(request.nonce, request.time, now - FILE_REQUEST_MAX_AGE)
        for enclave, reason in refused.items():
            tx.audit("host_refuse", enclave, {"host": request.host, "request": request.kind, "reason": reason})
        have = None if request.kind == "enrollment" else request.have
        document, package = _seal(tx, view, record, request.kind, policy, request.nonce, have, {}, refused)
    return Answer(request.host, document, package, tuple(accepted), refused)


def describe_answer(answer: Answer) -> dict[str, object]:
    """A JSON-ready summary of an answer for ``--json`` output and logs (no key material)."""
    package = answer.package
    return {"host": answer.host, "kind": package.kind, "created": iso_utc(package.created),
            "enclaves": sorted(package.records), "with_keys": sorted(package.keys), "issued": list(answer.issued),
            "refused": dict(answer.refused), "files": len(package.files)}
