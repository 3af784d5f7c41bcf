"""Certificate revocation lists as values: build, parse and judge a CRL (no keystore, no disk).

The identity CA signs ``public/crl.pem``; :mod:`cobot_security.keystore.revocation` decides what
goes in it and writes it through a keystore transaction.  Everything here takes its inputs as
arguments, so the keystore, the health probes and ``verify`` judge a CRL the same way.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore.pki import PrivateKey

#: The CRL's lastUpdate is this far before ``now``: measured, Cyclone refuses to create any
#: participant whose CRL is not yet valid, so a peer with a slightly slow clock would stop the cell.
CRL_BACKDATE = _dt.timedelta(hours=1)

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
    """What a CRL says now; ``due`` when it should be re-issued (or is absent)."""

    present: bool
    number: int | None = None
    last_update: _dt.datetime | None = None
    next_update: _dt.datetime | None = None
    revoked: int = 0
    due: bool = True
    expired: bool = False


def reason_flag(reason: str) -> x509.ReasonFlags:
    """The RFC 5280 reason code of a CLI reason word.

    :raises InputError: an unknown reason word.
    """
    try:
        return REASONS[reason]
    except KeyError:
        raise InputError(None, "reason", "one of " + ", ".join(REASONS), repr(reason)) from None


def build_crl(
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
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
            .add_extension(x509.CRLReason(reason_flag(entry.reason)), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked_cert)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def parse_crl(data: bytes, source: Path | str) -> x509.CertificateRevocationList:
    """The CRL in ``data`` (PEM).

    :raises KeystoreError: naming ``source`` when it is not a PEM CRL.
    """
    try:
        return x509.load_pem_x509_crl(data)
    except ValueError:
        raise KeystoreError(source, "expected a PEM certificate revocation list") from None


def crl_number(crl: x509.CertificateRevocationList | None) -> int:
    """The CRLNumber extension (0 when absent or no CRL)."""
    if crl is None:
        return 0
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return 0


def crl_due(crl: x509.CertificateRevocationList | None, now: _dt.datetime) -> bool:
    """Due in the last third of the CRL's own interval (issued → next_update), or when absent.

    It was issued :data:`CRL_BACKDATE` after its lastUpdate.
    """
    if crl is None or crl.next_update_utc is None:
        return True
    interval = crl.next_update_utc - crl.last_update_utc - CRL_BACKDATE
    return now >= crl.next_update_utc - interval / 3


def describe_crl(crl: x509.CertificateRevocationList | None, now: _dt.datetime) -> CrlStatus:
    """Number, validity, revoked count and freshness of ``crl`` at ``now``."""
    if crl is None:
        return CrlStatus(present=False)
    next_update = crl.next_update_utc
    return CrlStatus(present=True, number=crl_number(crl), last_update=crl.last_update_utc,
                     next_update=next_update, revoked=len(crl), due=crl_due(crl, now),
                     expired=next_update is None or now >= next_update)


def is_revoked(crl: x509.CertificateRevocationList | None, cert: x509.Certificate) -> bool:
    """True when ``crl`` lists ``cert``'s serial."""
    return crl is not None and crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
