"""Verifying signed health messages: trust anchor, certificate cache, time window, replay, signature.

The trust anchor is the keystore's identity CA certificate and its CRL (``public/``; a host
keystore without CA keys has both).  A reporter's certificate travels in every message; its chain
(issued and signed by the identity CA, an EC P-256 leaf with digitalSignature, subject
``CN=<enclave>``) is checked once per certificate and anchor and cached; validity, revocation,
time window and replay are checked per message, then one ECDSA signature.  Cheap checks come
first, so a flood of forgeries costs little.  Nothing here merges anything: the caller does, for
the messages this module accepts (docs/health.md, "Verification").
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from cobot_security.errors import KeystoreError
from cobot_security.health.envelope import Envelope, StatusRecord, canonical_bytes
from cobot_security.keystore import pki
from cobot_security.keystore.crl import parse_crl
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import KeystoreLayout

__all__ = ["REASONS", "HealthVerifier", "TrustAnchor", "TrustSource", "load_trust_anchor"]

#: Why a message is dropped, as counted (docs/health.md, "Dropped messages").
REASONS = ("oversized", "undecodable", "too_many_statuses", "unsigned", "bad_signature", "bad_certificate",
           "revoked", "no_trust_anchor", "stale", "replayed", "reporter_limit")


@dataclass(frozen=True)
class TrustAnchor:
    """The identity CA certificate and the serials its CRL revokes; ``generation`` names the pair."""

    ca: x509.Certificate
    revoked: frozenset[int]
    crl_next_update: _dt.datetime | None
    generation: str


def load_trust_anchor(layout: KeystoreLayout) -> TrustAnchor:
    """The identity CA and CRL of ``layout`` (read safely; the CRL must be signed by that CA).

    :raises KeystoreError: a file missing, refused, malformed, or a CRL the CA did not sign.
    """
    ca_pem = read_keystore_file(layout, layout.identity_ca_cert)
    crl_pem = read_keystore_file(layout, layout.crl)
    ca = pki.load_certificate(ca_pem, layout.identity_ca_cert)
    crl = parse_crl(crl_pem, layout.crl)
    if not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        raise KeystoreError(layout.crl, "expected a CRL signed by the identity CA, got one that does not verify")
    generation = hashlib.sha256(ca_pem + b"\0" + crl_pem).hexdigest()
    return TrustAnchor(ca=ca, revoked=frozenset(r.serial_number for r in crl),
                       crl_next_update=crl.next_update_utc, generation=generation)


class TrustSource:
    """The trust anchor of a keystore, re-read when the CA certificate or the CRL file changes."""

    def __init__(self, keystore: Path) -> None:
        self.layout = KeystoreLayout(Path(keystore))
        self.anchor: TrustAnchor | None = None
        self.error = "not loaded yet"
        self._stamp: tuple[object, ...] | None = None

    def refresh(self) -> bool:
        """Re-read when the files changed; True when the anchor changed (or failed) this time."""
        try:
            stamp: tuple[object, ...] = tuple(
                (st.st_ino, st.st_mtime_ns, st.st_size)
                for st in (os.stat(self.layout.identity_ca_cert), os.stat(self.layout.crl)))
        except OSError as exc:
            stamp = ("missing", exc.filename)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.anchor, self.error = load_trust_anchor(self.layout), ""
        except KeystoreError as exc:
            self.anchor, self.error = None, str(exc)
        return True


@dataclass(frozen=True)
class _CertVerdict:
    """What one certificate is worth under one anchor: its enclave and key, or the problem."""

    problem: str
    enclave: str = ""
    key: ec.EllipticCurvePublicKey | None = None
    serial: int = 0
    not_before: _dt.datetime | None = None
    not_after: _dt.datetime | None = None


def _judge_certificate(der: bytes, ca: x509.Certificate) -> _CertVerdict:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return _CertVerdict("not a DER certificate")
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return _CertVerdict("expected an EC P-256 key")
    if cert.issuer != ca.subject:
        return _CertVerdict("not issued by the identity CA")
    try:
        cert.verify_directly_issued_by(ca)
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (InvalidSignature, ValueError, TypeError, x509.ExtensionNotFound):
        return _CertVerdict("not signed by the identity CA, or without basic constraints and key usage")
    if constraints.ca or not usage.digital_signature:
        return _CertVerdict("expected an end-entity certificate allowing digitalSignature")
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if len(names) != 1 or len(cert.subject) != 1 or not isinstance(names[0].value, str):
        return _CertVerdict("expected a subject CN=<enclave path>")
    return _CertVerdict("", names[0].value, key, cert.serial_number, cert.not_valid_before_utc,
                        cert.not_valid_after_utc)


class HealthVerifier:
    """Accepts a message only from a valid, unrevoked enclave certificate, fresh, not replayed, signed.

    ``max_clock_skew_s`` bounds ``|sent_at - now|``; ``cache_size`` bounds the certificate cache.
    Replay state (the last accepted seq) is kept per reporter identity until :meth:`forget`.
    """

    def __init__(self, max_clock_skew_s: float, cache_size: int = 4096) -> None:
        self.skew = _dt.timedelta(seconds=max_clock_skew_s)
        self.cache_size = cache_size
        self.anchor: TrustAnchor | None = None
        self._cache: OrderedDict[bytes, _CertVerdict] = OrderedDict()
        self._last_seq: dict[str, int] = {}

    def set_anchor(self, anchor: TrustAnchor | None) -> None:
        """Use ``anchor`` from now on (None: reject everything as ``no_trust_anchor``)."""
        if anchor is None or self.anchor is None or anchor.generation != self.anchor.generation:
            self._cache.clear()
        self.anchor = anchor

    def _verdict(self, der: bytes, ca: x509.Certificate) -> _CertVerdict:
        digest = hashlib.sha256(der).digest()
        verdict = self._cache.get(digest)
        if verdict is None:
            verdict = _judge_certificate(der, ca)
            self._cache[digest] = verdict
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(digest)
        return verdict

    def check(self, envelope: Envelope, statuses: Sequence[StatusRecord], now: _dt.datetime) -> tuple[str, str]:
        """("", "") when the message is authentic and new, else (reason, detail).

        Does not record the seq: call :meth:`commit` once the message is taken.
        """
        anchor = self.anchor
        if anchor is None:
            return "no_trust_anchor", "the supervisor has no identity CA and CRL to verify with"
        if abs(envelope.sent_at - now) > self.skew:
            return "stale", f"sent_at {envelope.sent_at_text} is more than {self.skew.total_seconds():g} s from now"
        last = self._last_seq.get(envelope.identity)
        if last is not None and envelope.seq <= last:
            return "replayed", f"seq {envelope.seq} not above {last} of {envelope.identity}"
        verdict = self._verdict(envelope.certificate_der, anchor.ca)
        if verdict.problem:
            return "bad_certificate", verdict.problem
        if verdict.enclave != envelope.reporter:
            return "bad_certificate", f"certificate of {verdict.enclave}, message claims {envelope.reporter}"
        assert verdict.not_before is not None and verdict.not_after is not None and verdict.key is not None
        if not verdict.not_before <= now <= verdict.not_after:
            return "bad_certificate", f"certificate of {verdict.enclave} not valid now"
        if verdict.serial in anchor.revoked:
            return "revoked", f"certificate of {verdict.enclave} (serial {verdict.serial:x}) is revoked"
        try:
            data = canonical_bytes(envelope.reporter, envelope.node, envelope.host, envelope.seq,
                                   envelope.sent_at_text, statuses)
            verdict.key.verify(envelope.signature, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, UnicodeEncodeError, ValueError):
            return "bad_signature", f"signature of {envelope.reporter} does not verify"
        return "", ""

    def commit(self, envelope: Envelope) -> None:
        """Record ``envelope``'s seq as the last accepted one of its reporter."""
        self._last_seq[envelope.identity] = envelope.seq

    def forget(self, identity: str) -> None:
        """Drop the replay state of a reporter the supervisor forgot."""
        self._last_seq.pop(identity, None)
