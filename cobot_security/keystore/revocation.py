"""Certificate revocation: the identity CA's CRL (``public/crl.pem``) and our record of revoked enclaves.

Revoking an enclave adds its current certificate serial to ``.cobot_security/revoked.json`` and
re-issues ``public/crl.pem`` signed by the identity CA.  Every enclave directory links ``crl.pem``
to it; rmw (rmw_dds_common ``get_security_files``) loads that optional file and passes it to the
DDS authentication plugin as ``dds.sec.auth.crl``, so every participant refuses the revoked one.
The enclave's files stay on disk (evidence; revocation is explicit, never silent deletion).
The CRL is re-issued before its ``next_update`` by :func:`refresh_crl` (due in the last third of
its interval), so that peers never hold a stale list.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore import pki
from cobot_security.keystore.audit import append_audit
from cobot_security.keystore.integrity import write_integrity_manifest
from cobot_security.keystore.layout import CERT, CRL, KeystoreLayout, enclave_crl_target
from cobot_security.policy.model import WorkcellPolicy

if TYPE_CHECKING:
    from cobot_security.keystore.store import Keystore

REVOKED_VERSION = 1
#: The CRL's lastUpdate is this far before ``now``: measured, Cyclone refuses to create any
#: participant whose CRL is not yet valid, so a peer with a slightly slow clock would stop the cell.
CRL_BACKDATE = _dt.timedelta(hours=1)
_PUBLIC_MODE = 0o644

#: CLI reason words → RFC 5280 §5.3.1 reason codes.
REASONS: dict[str, x509.ReasonFlags] = {
    "key_compromise": x509.ReasonFlags.key_compromise,
    "superseded": x509.ReasonFlags.superseded,
    "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
    "unspecified": x509.ReasonFlags.unspecified,
}


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked enclave certificate (serial in lower-case hex)."""

    serial: str
    enclave: str
    reason: str
    revoked_at: _dt.datetime
    note: str = ""

    def to_json(self) -> dict[str, str]:
        """The entry as stored in revoked.json."""
        return {"serial": self.serial, "enclave": self.enclave, "reason": self.reason,
                "revoked_at": iso_utc(self.revoked_at), "note": self.note}


@dataclass(frozen=True)
class CrlStatus:
    """What ``public/crl.pem`` says now; ``due`` when it should be re-issued (or is absent)."""

    present: bool
    number: int | None = None
    last_update: _dt.datetime | None = None
    next_update: _dt.datetime | None = None
    revoked: int = 0
    due: bool = True
    expired: bool = False


def _reason_flag(reason: str) -> x509.ReasonFlags:
    try:
        return REASONS[reason]
    except KeyError:
        raise InputError(None, "reason", "one of " + ", ".join(REASONS), repr(reason)) from None


def build_crl(
    issuer_cert: x509.Certificate,
    issuer_key: pki.PrivateKey,
    revoked: Sequence[RevokedEntry],
    now: _dt.datetime,
    next_update: _dt.datetime,
    *,
    number: int = 1,
) -> bytes:
    """A PEM CRL signed by ``issuer_key`` listing ``revoked`` (with reason codes), CRLNumber ``number``.

    :raises InputError: ``next_update`` not after ``now``, a bad serial or an unknown reason.
    """
    if next_update <= now:
        raise InputError(None, "next_update", f"a time after {iso_utc(now)}", iso_utc(next_update))
    authority_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(
        issuer_cert.public_key())  # type: ignore[arg-type]
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(authority_key_id, critical=False)
    )
    for entry in revoked:
        try:
            serial = int(entry.serial, 16)
        except ValueError:
            raise InputError(None, "serial", "a hexadecimal certificate serial", repr(entry.serial)) from None
        revoked_cert = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(entry.revoked_at)
            .add_extension(x509.CRLReason(_reason_flag(entry.reason)), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked_cert)
    crl = builder.sign(issuer_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def load_crl(path: Path) -> x509.CertificateRevocationList | None:
    """The CRL at ``path``, or None when absent.

    :raises KeystoreError: it exists but is not a PEM CRL.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeystoreError(path, f"cannot read the CRL: {exc.strerror or exc}") from None
    try:
        return x509.load_pem_x509_crl(data)
    except ValueError:
        raise KeystoreError(path, "expected a PEM certificate revocation list") from None


def _crl_number(crl: x509.CertificateRevocationList | None) -> int:
    if crl is None:
        return 0
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return 0


def read_revoked(layout: KeystoreLayout) -> list[RevokedEntry]:
    """The revoked entries recorded in ``.cobot_security/revoked.json`` (empty when absent).

    :raises KeystoreError: the file is not the expected JSON.
    """
    path = layout.revoked
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        raise KeystoreError(path, "expected readable JSON (our revocation record)") from None
    try:
        return [
            RevokedEntry(serial=str(e["serial"]), enclave=str(e["enclave"]), reason=str(e["reason"]),
                         revoked_at=_dt.datetime.fromisoformat(str(e["revoked_at"])), note=str(e.get("note", "")))
            for e in document["revoked"]
        ]
    except (KeyError, TypeError, ValueError):
        raise KeystoreError(path, "revoked: expected a list of {serial, enclave, reason, revoked_at}") from None


def _write_revoked(layout: KeystoreLayout, entries: Sequence[RevokedEntry]) -> None:
    document = {"version": REVOKED_VERSION, "revoked": [e.to_json() for e in entries]}
    atomic.write_bytes_atomic(layout.revoked, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode(),
                              0o600)


def link_enclave_crls(layout: KeystoreLayout) -> list[str]:
    """Give every enclave a ``crl.pem`` symlink to ``public/crl.pem`` (depth-aware); return those added.

    Every participant must load the CRL for a revoked peer to be refused by all of them.
    """
    added: list[str] = []
    for current, dirs, files in os.walk(layout.enclaves_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(current)
        if here == layout.enclaves_dir or CERT not in files:
            continue
        path = "/" + "/".join(here.relative_to(layout.enclaves_dir).parts)
        link = here / CRL
        if not os.path.lexists(link):
            os.symlink(enclave_crl_target(path), link)
            added.append(path)
    return added


def _issue_crl(keystore: Keystore, entries: Sequence[RevokedEntry], now: _dt.datetime,
               policy: WorkcellPolicy) -> int:
    """Sign and write public/crl.pem with the next CRLNumber, link it everywhere, re-sign integrity."""
    layout = keystore.layout
    identity, permissions = keystore.ca_pairs()
    number = _crl_number(load_crl(layout.crl)) + 1
    pem = build_crl(identity.cert, identity.key, entries, now - CRL_BACKDATE,
                    now + policy.lifetimes.crl_next_update, number=number)
    atomic.write_bytes_atomic(layout.crl, pem, _PUBLIC_MODE)
    link_enclave_crls(layout)
    write_integrity_manifest(layout, permissions.cert, permissions.key, now)
    return number


def _lock(keystore: Keystore) -> atomic.KeystoreLock:
    return atomic.KeystoreLock(keystore.layout.lock, keystore.lock_timeout_s)


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

    The enclave's files stay on disk.  Runs under the keystore lock.

    :raises InvalidNameError: unsafe enclave path.
    :raises InputError: unknown reason.
    :raises KeystoreError: no such enclave, its certificate is already revoked, or the disk refuses.
    :raises PassphraseError: the CA keys cannot be decrypted.
    :raises LockError: another process holds the keystore lock.
    """
    layout = keystore.layout
    _reason_flag(reason)
    directory = layout.enclave_dir(path)
    cert_path = directory / CERT
    if not cert_path.is_file():
        raise KeystoreError(directory, f"enclave {path}: expected an enclave with a certificate, found none "
                                       "(see cobot-security enclave list)")
    keystore.ca_pairs()
    with _lock(keystore):
        try:
            cert = pki.load_certificate(cert_path.read_bytes(), cert_path)
        except OSError as exc:
            raise KeystoreError(cert_path, f"cannot read: {exc.strerror or exc}") from None
        serial = format(cert.serial_number, "x")
        entries = read_revoked(layout)
        if any(e.serial == serial for e in entries):
            raise KeystoreError(directory, f"enclave {path}: certificate serial {serial} is already revoked")
        entry = RevokedEntry(serial=serial, enclave=path, reason=reason, revoked_at=now, note=note)
        entries.append(entry)
        try:
            _write_revoked(layout, entries)
            number = _issue_crl(keystore, entries, now, policy)
        except OSError as exc:
            raise KeystoreError(exc.filename or layout.root, f"cannot revoke {path}: {exc.strerror or exc}") from exc
        details = {"serial": serial, "reason": reason, "crl_number": str(number)}
        if note:
            details["note"] = note
        append_audit(layout, "revoke", path, details, now)
    return entry


def _due(crl: x509.CertificateRevocationList | None, now: _dt.datetime) -> bool:
    """Due in the last third of the CRL's own interval (issued → next_update), or when absent.

    It was issued :data:`CRL_BACKDATE` after its lastUpdate.
    """
    if crl is None or crl.next_update_utc is None:
        return True
    interval = crl.next_update_utc - crl.last_update_utc - CRL_BACKDATE
    return now >= crl.next_update_utc - interval / 3


def refresh_crl(keystore: Keystore, now: _dt.datetime, policy: WorkcellPolicy, force: bool = False) -> bool:
    """Re-issue public/crl.pem (same entries, next number) when due or ``force``; True if re-issued.

    :raises KeystoreError: the CRL or record is unreadable, or the disk refuses.
    :raises PassphraseError: the CA keys cannot be decrypted.
    :raises LockError: another process holds the keystore lock.
    """
    layout = keystore.layout
    if not force and not _due(load_crl(layout.crl), now):
        return False
    keystore.ca_pairs()
    with _lock(keystore):
        previous = load_crl(layout.crl)
        if not force and not _due(previous, now):
            return False  # another process refreshed it meanwhile
        entries = read_revoked(layout)
        try:
            number = _issue_crl(keystore, entries, now, policy)
        except OSError as exc:
            raise KeystoreError(exc.filename or layout.crl, f"cannot refresh the CRL: {exc.strerror or exc}") from exc
        details = {"crl_number": str(number), "revoked": str(len(entries)),
                   "next_update": iso_utc(now + policy.lifetimes.crl_next_update)}
        if force:
            details["forced"] = "true"
        append_audit(layout, "crl_refresh", "/", details, now)
    return True


def crl_status(layout: KeystoreLayout, now: _dt.datetime) -> CrlStatus:
    """Read public/crl.pem: its number, validity, how many serials it lists, and whether it is due.

    :raises KeystoreError: the CRL exists but is not a PEM CRL.
    """
    crl = load_crl(layout.crl)
    if crl is None:
        return CrlStatus(present=False)
    next_update = crl.next_update_utc
    return CrlStatus(
        present=True,
        number=_crl_number(crl),
        last_update=crl.last_update_utc,
        next_update=next_update,
        revoked=len(crl),
        due=_due(crl, now),
        expired=next_update is None or now >= next_update,
    )
