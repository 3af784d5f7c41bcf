"""Revoking enclaves and keeping the CRL fresh, each as one keystore transaction.

Revoking an enclave adds its current certificate serial to ``.cobot_security/revoked.json`` and
re-issues ``public/crl.pem`` signed by the identity CA (:mod:`cobot_security.keystore.crl`).
Every enclave directory links ``crl.pem`` to it; rmw (rmw_dds_common ``get_security_files``) loads
that optional file and passes it to the DDS authentication plugin, so every participant refuses
the revoked one.  The enclave's files stay on disk (evidence; revocation is explicit, never silent
deletion).  The CRL is re-issued before its ``next_update`` by :func:`refresh_crl` (due in the
last third of its interval) — always from the full revocation record, so a refresh never drops a
revoked serial.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Sequence

from cryptography import x509

from cobot_security.clock import iso_utc
from cobot_security.errors import KeystoreError
from cobot_security.json_input import parse_json
from cobot_security.keystore import pki
from cobot_security.keystore.crl import (
    CRL_BACKDATE,
    CrlStatus,
    RevokedEntry,
    build_crl,
    crl_due,
    crl_number,
    describe_crl,
    parse_crl,
    reason_flag,
)
from cobot_security.keystore.enclaves import enclave_directories, enclave_path_of
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.host_view import issued_serials
from cobot_security.keystore.layout import CERT, CRL, KeystoreLayout, enclave_crl_target
from cobot_security.keystore.store import Keystore
from cobot_security.keystore.transaction import KeystoreTransaction
from cobot_security.policy.model import WorkcellPolicy

REVOKED_VERSION = 1


def load_crl(layout: KeystoreLayout) -> x509.CertificateRevocationList | None:
    """The keystore's CRL (``public/crl.pem``), or None when absent.

    :raises KeystoreError: it exists but is refused or not a PEM CRL.
    """
    if not os.path.lexists(layout.crl):
        return None
    return parse_crl(read_keystore_file(layout, layout.crl), layout.crl)


def read_revoked(layout: KeystoreLayout) -> list[RevokedEntry]:
    """The revoked entries recorded in ``.cobot_security/revoked.json`` (empty when absent).

    :raises KeystoreError: the file is refused or not the expected JSON.
    """
    path = layout.revoked
    if not os.path.lexists(path):
        return []
    try:
        document = parse_json(read_keystore_file(layout, path))
    except ValueError:
        raise KeystoreError(path, "expected readable JSON (our revocation record)") from None
    try:
        return [
            RevokedEntry(serial=str(e["serial"]), enclave=str(e["enclave"]), reason=str(e["reason"]),
                         revoked_at=_dt.datetime.fromisoformat(str(e["revoked_at"])), note=str(e.get("note", "")))
            for e in document["revoked"]
        ]
    except (KeyError, TypeError, ValueError):
        raise KeystoreError(path, "revoked: expected a list of {serial, enclave, reason, revoked_at}") from None


def revoked_current_enclaves(layout: KeystoreLayout) -> frozenset[str]:
    """Enclaves on disk whose *current* certificate is revoked (a re-issued enclave is not).

    :raises KeystoreError: the revocation record or a certificate is unreadable or refused.
    """
    revoked: set[str] = set()
    for entry in read_revoked(layout):
        cert_path = layout.enclave_dir(entry.enclave) / CERT
        if os.path.lexists(cert_path):
            cert = pki.load_certificate(read_keystore_file(layout, cert_path), cert_path)
            if format(cert.serial_number, "x") == entry.serial.lower():
                revoked.add(entry.enclave)
    return frozenset(revoked)


def _link_enclave_crls(tx: KeystoreTransaction) -> None:
    """Give every enclave a ``crl.pem`` link to ``public/crl.pem`` where it lacks one."""
    layout = tx.layout
    for directory in enclave_directories(layout):
        link = directory / CRL
        if not os.path.lexists(link):
            os.symlink(enclave_crl_target(enclave_path_of(layout, directory)), link)
            tx.note_changed(link)


def _issue_crl(tx: KeystoreTransaction, entries: Sequence[RevokedEntry], policy: WorkcellPolicy) -> int:
    """Write revoked.json and a CRL with the next CRLNumber listing ``entries``; link it everywhere."""
    layout = tx.layout
    number = crl_number(load_crl(layout)) + 1
    pem = build_crl(tx.ca.identity.cert, tx.ca.identity.key, entries, tx.now - CRL_BACKDATE,
                    tx.now + policy.lifetimes.crl_next_update, number=number)
    document = {"version": REVOKED_VERSION, "revoked": [e.to_json() for e in entries]}
    tx.write_file(layout.revoked, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode(), 0o600)
    tx.write_file(layout.crl, pem, 0o644)
    try:
        _link_enclave_crls(tx)
    except OSError as exc:
        raise KeystoreError(exc.filename or layout.enclaves_dir, f"cannot link the CRL: {exc.strerror or exc}") from exc
    return number


def revoke_enclave(
    keystore: Keystore,
    path: str,
    reason: str,
    now: _dt.datetime,
    policy: WorkcellPolicy,
    *,
    note: str = "",
) -> RevokedEntry:
    """Revoke the current certificate of enclave ``path``: record it, re-issue the CRL, audit it.

    In a multi-host cell the certificates the authority issued for ``path`` to its hosts (keys born
    there, :mod:`cobot_security.keystore.host_view`) are revoked in the same CRL.  The enclave's
    files stay on disk.  Returns the entry of the CA keystore's certificate (else the first host's).

    :raises InvalidNameError: unsafe enclave path.
    :raises InputError: unknown reason.
    :raises KeystoreError: no such enclave, its certificates are already revoked or refused, or the
        disk refuses.
    :raises PassphraseError: the CA keys cannot be decrypted.
    :raises LockError: another process holds the keystore lock.
    """
    reason_flag(reason)
    directory = keystore.layout.enclave_dir(path)
    cert_path = directory / CERT
    with keystore.transaction(now, "revoke") as tx:
        serials: dict[str, str] = {}  # serial → who holds it
        if os.path.lexists(cert_path):
            cert = pki.load_certificate(read_keystore_file(tx.layout, cert_path), cert_path)
            serials[format(cert.serial_number, "x")] = ""
        for host, serial in issued_serials(tx.layout, path).items():
            serials.setdefault(serial, f"issued to host {host}")
        if not serials:
            raise KeystoreError(directory, f"enclave {path}: expected an enclave with a certificate, found none "
                                           "(see cobot-security enclave list)")
        entries = read_revoked(tx.layout)
        known = {e.serial for e in entries}
        new = [RevokedEntry(serial=serial, enclave=path, reason=reason, revoked_at=now,
                            note="; ".join(p for p in (note, holder) if p))
               for serial, holder in serials.items() if serial not in known]
        if not new:
            raise KeystoreError(directory, f"enclave {path}: certificate serial {', '.join(serials)} "
                                           "is already revoked")
        number = _issue_crl(tx, [*entries, *new], policy)
        for entry in new:
            details = {"serial": entry.serial, "reason": reason, "crl_number": str(number)}
            if entry.note:
                details["note"] = entry.note
            tx.audit("revoke", path, details)
    return new[0]


def refresh_crl(keystore: Keystore, now: _dt.datetime, policy: WorkcellPolicy, force: bool = False) -> bool:
    """Re-issue public/crl.pem (same entries, next number) when due or ``force``; True if re-issued.

    :raises KeystoreError: the CRL or record is unreadable, or the disk refuses.
    :raises PassphraseError: the CA keys cannot be decrypted.
    :raises LockError: another process holds the keystore lock.
    """
    if not force and not crl_due(load_crl(keystore.layout), now):
        return False
    with keystore.transaction(now, "crl_refresh") as tx:
        if not force and not crl_due(load_crl(tx.layout), now):
            return False  # another process refreshed it meanwhile
        entries = read_revoked(tx.layout)
        number = _issue_crl(tx, entries, policy)
        details = {"crl_number": str(number), "revoked": str(len(entries)),
                   "next_update": iso_utc(now + policy.lifetimes.crl_next_update)}
        if force:
            details["forced"] = "true"
        tx.audit("crl_refresh", "/", details)
    return True


def crl_status(layout: KeystoreLayout, now: _dt.datetime) -> CrlStatus:
    """Read public/crl.pem: its number, validity, how many serials it lists, and whether it is due.

    :raises KeystoreError: the CRL exists but is refused or not a PEM CRL.
    """
    return describe_crl(load_crl(layout), now)
