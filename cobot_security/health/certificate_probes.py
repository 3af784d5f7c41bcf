"""Certificate probes: identity certificate expiry and chain (CERT_EXPIRY, CERT_CHAIN) and the CRLs (CRL)."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from cobot_security import checks
from cobot_security.clock import days_left, iso_utc
from cobot_security.errors import KeystoreError
from cobot_security.health.probe import KEYSTORE_SUBJECT, load_certificate_file
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import CERT, KeystoreLayout
from cobot_security.keystore.revocation import load_crl
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.policy.permissions import subject_name
from cobot_security.status import Finding, Level
from cobot_security.tree import walk_tree

CRL_FILE = "crl.pem"


def _expiry_finding(
    enclave: str, cert: x509.Certificate, now: _dt.datetime, warn_days: int, error_days: int
) -> Finding:
    not_after, not_before = cert.not_valid_after_utc, cert.not_valid_before_utc
    days = days_left(not_after, now)
    values = (("enclave", enclave), ("not_after", iso_utc(not_after)), ("days_left", str(days)))
    remaining = not_after - now
    if now < not_before:
        level, message = Level.ERROR, f"certificate not valid before {iso_utc(not_before)}"
    elif now > not_after:
        level, message = Level.ERROR, f"certificate expired at {iso_utc(not_after)}"
    elif remaining <= _dt.timedelta(days=error_days):
        level, message = Level.ERROR, f"certificate expires in {days} days (error at {error_days})"
    elif remaining <= _dt.timedelta(days=warn_days):
        level, message = Level.WARN, f"certificate expires in {days} days (warn at {warn_days})"
    else:
        level, message = Level.OK, f"certificate valid for {days} more days"
    return Finding(checks.CERT_EXPIRY, enclave, level, message, values)


def _chain_problem(enclave: str, cert: x509.Certificate, ca: x509.Certificate) -> str | None:
    if cert.issuer != ca.subject:
        return f"issuer {cert.issuer.rfc4514_string()} is not the identity CA {ca.subject.rfc4514_string()}"
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return "signature does not verify with the identity CA"
    expected = subject_name(enclave)
    if cert.subject.rfc4514_string() != expected:
        return f"subject: expected {expected}, got {cert.subject.rfc4514_string()}"
    return None


def _load_crl_quietly(layout: KeystoreLayout) -> x509.CertificateRevocationList | None:
    """The keystore's CRL, or None when absent or unreadable (probe_crl reports those cases)."""
    try:
        return load_crl(layout)
    except (OSError, KeystoreError, ValueError):
        return None


def probe_certificates(
    layout: KeystoreLayout,
    policy: WorkcellPolicy,
    now: _dt.datetime,
    warn_days: int = 30,
    error_days: int = 7,
) -> list[Finding]:
    """CERT_EXPIRY and CERT_CHAIN for every policy enclave.

    Expiry: ERROR when missing, not yet valid, expired or ``not_after - now <= error_days``; WARN
    when ``<= warn_days``; OK otherwise.  Chain: issued and signed by the identity CA, with subject
    ``CN=<enclave path>``.
    """
    findings: list[Finding] = []
    ca: x509.Certificate | None
    try:
        ca = load_certificate_file(layout, layout.identity_ca_cert)
    except (OSError, KeystoreError):
        ca = None
    crl = _load_crl_quietly(layout)
    for enclave in policy.enclaves:
        path = layout.enclave_file(enclave.path, CERT)
        values = (("enclave", enclave.path),)
        try:
            cert = load_certificate_file(layout, path)
        except (OSError, KeystoreError) as exc:
            reason = exc.problem if isinstance(exc, KeystoreError) else "unreadable"
            message = f"certificate missing or unreadable ({path.relative_to(layout.root)}: {reason})"
            findings.append(Finding(checks.CERT_EXPIRY, enclave.path, Level.ERROR, message, values))
            findings.append(Finding(checks.CERT_CHAIN, enclave.path, Level.ERROR, message, values))
            continue
        findings.append(_expiry_finding(enclave.path, cert, now, warn_days, error_days))
        problem = "identity CA certificate missing or unreadable" if ca is None else \
            _chain_problem(enclave.path, cert, ca)
        revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number) if crl is not None else None
        if revoked is not None and not problem:
            # The policy still names an enclave whose identity is on the CRL: peers refuse it.
            problem = (f"certificate serial {cert.serial_number:x} is revoked (on the CRL since "
                       f"{revoked.revocation_date_utc.isoformat()}): re-issue or remove the enclave")
        findings.append(Finding(
            checks.CERT_CHAIN, enclave.path, Level.ERROR if problem else Level.OK,
            problem or "issued by the identity CA for this enclave", values,
        ))
    return findings


def _find_crls(layout: KeystoreLayout) -> list[Path]:
    found: dict[str, Path] = {}
    candidates = [layout.public_dir / CRL_FILE]
    for current, dirs, files in walk_tree(layout.enclaves_dir):
        dirs.sort()
        if CRL_FILE in files:
            candidates.append(Path(current) / CRL_FILE)
    for path in candidates:
        if path.exists():
            found.setdefault(os.path.realpath(path), path)
    return list(found.values())


def _crl_verdict(layout: KeystoreLayout, path: Path, ca: x509.Certificate | None,
                 now: _dt.datetime) -> tuple[Level, str, _dt.datetime | None]:
    rel = path.relative_to(layout.root).as_posix()
    try:
        crl = x509.load_pem_x509_crl(read_keystore_file(layout, path))
    except (KeystoreError, ValueError):
        return Level.ERROR, f"{rel}: not a readable PEM CRL", None
    if ca is None:
        return Level.ERROR, f"{rel}: identity CA certificate missing or unreadable", None
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        return Level.ERROR, f"{rel}: not signed by the identity CA", None
    next_update = crl.next_update_utc
    if next_update is None:
        return Level.ERROR, f"{rel}: no next update", None
    if crl.last_update_utc > now:
        return Level.ERROR, f"{rel}: issued in the future ({iso_utc(crl.last_update_utc)})", next_update
    if next_update <= now:
        return Level.ERROR, f"{rel}: stale since {iso_utc(next_update)}", next_update
    if next_update - now <= _dt.timedelta(days=1):
        return Level.WARN, f"{rel}: next update due {iso_utc(next_update)}", next_update
    return Level.OK, f"{rel}: current until {iso_utc(next_update)}", next_update


def probe_crl(layout: KeystoreLayout, now: _dt.datetime) -> list[Finding]:
    """CRL for the keystore: every crl.pem (public/ or an enclave) signed by the identity CA and current.

    None found → WARN (revocation impossible); stale, unsigned or unreadable → ERROR; within one day
    of next_update → WARN.
    """
    paths = _find_crls(layout)
    if not paths:
        return [Finding(checks.CRL, KEYSTORE_SUBJECT, Level.WARN, "no CRL: revocation not possible")]
    try:
        ca: x509.Certificate | None = load_certificate_file(layout, layout.identity_ca_cert)
    except (OSError, KeystoreError):
        ca = None
    verdicts = [_crl_verdict(layout, path, ca, now) for path in paths]
    level = max(v[0] for v in verdicts)
    shown = [v for v in verdicts if v[0] == level]
    updates = [v[2] for v in verdicts if v[2] is not None]
    values = (("next_update", iso_utc(min(updates))),) if updates else ()
    return [Finding(checks.CRL, KEYSTORE_SUBJECT, level, "; ".join(v[1] for v in shown), values)]
