"""What the authority checks before it signs anything for a host (pure: facts and ``now`` passed in).

Request level: the host is one of the policy's, the request is recent (a file carried by hand may
take days, a message over the graph minutes) and not from the future, and its nonce was never
seen (replay); a per-host rate limit bounds what an online authority does for one host.

Item level, each returning the reason for a refusal or None:

* every CSR: a valid self-signature (proof of possession of the new key), subject exactly
  ``CN=<enclave>``, an EC P-256 key (what the keystore issues), for an enclave the policy assigns
  to the requesting host;
* a renewal (and a CRL request) additionally proves the *current* identity: a certificate issued
  by the identity CA for that enclave, valid now, not revoked, the one the authority gave this
  host (a foreign identity is refused), and a signature by its key over the request; a renewal
  must be inside the renew window and bring a new key.

An expired, revoked or foreign identity cannot renew: the host must enroll again by hand.
"""

from __future__ import annotations

import datetime as _dt
from collections import deque
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from cobot_security.clock import iso_utc
from cobot_security.errors import InputError
from cobot_security.keystore.crl import is_revoked
from cobot_security.keystore.host_documents import HostRequest, RequestItem
from cobot_security.keystore.host_view import HostView
from cobot_security.keystore.pki import PublicKey
from cobot_security.keystore.rotation import is_due
from cobot_security.keystore.signed_json import verify_bytes
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.policy.permissions import subject_name

#: A request file carried by hand from the host to the CA machine may be this old.
FILE_REQUEST_MAX_AGE = _dt.timedelta(days=7)
#: A request sent over the ROS graph may be this old when it arrives.
GRAPH_REQUEST_MAX_AGE = _dt.timedelta(minutes=5)
#: Tolerated clock difference between a host and the authority (a request "from the future").
CLOCK_SKEW = _dt.timedelta(minutes=5)
#: The key type the authority certifies (what the keystore itself generates).
REQUIRED_KEY = "EC P-256"


@dataclass(frozen=True)
class AuthorityFacts:
    """What the item checks read: the policy, the identity CA, its CRL, the host's view, the time."""

    policy: WorkcellPolicy
    identity_ca: x509.Certificate
    crl: x509.CertificateRevocationList | None
    view: HostView
    now: _dt.datetime


def check_request(request: HostRequest, policy: WorkcellPolicy, view: HostView, now: _dt.datetime,
                  max_age: _dt.timedelta, source: str) -> None:
    """Refuse a request from an unknown host, too old or from the future, or seen before.

    :raises InputError: naming the field and what is wrong (the CLI exits 2).
    """
    if policy.host(request.host) is None:
        known = ", ".join(h.name for h in policy.hosts) or "none (the policy has no hosts:)"
        raise InputError(source, "host", f"one of the policy's hosts ({known})", repr(request.host))
    if request.time > now + CLOCK_SKEW:
        raise InputError(source, "time", f"a time before {iso_utc(now + CLOCK_SKEW)}",
                         f"{iso_utc(request.time)} (clock of the host ahead?)")
    if request.time < now - max_age:
        raise InputError(source, "time", f"a request made after {iso_utc(now - max_age)}",
                         f"one made {iso_utc(request.time)} (too old: make a new one)")
    if request.nonce in view.nonces:
        raise InputError(source, "nonce", "a request not seen before",
                         f"a replay of the request of {iso_utc(view.nonces[request.nonce])}")


def _assigned(facts: AuthorityFacts, host: str, enclave: str) -> str | None:
    entry = facts.policy.enclave(enclave)
    if entry is None:
        return f"enclave {enclave} is not in the policy"
    if host not in entry.hosts:
        where = ", ".join(entry.hosts) or "no host"
        return f"enclave {enclave} is not assigned to host {host} (it runs on {where})"
    return None


def check_csr(item: RequestItem) -> tuple[x509.CertificateSigningRequest | None, str | None]:
    """The CSR of ``item`` when it is well formed for its enclave, else the reason."""
    if item.csr is None:
        return None, f"enclave {item.enclave}: no CSR"
    try:
        csr = x509.load_pem_x509_csr(item.csr)
        key = csr.public_key()
        subject = csr.subject.rfc4514_string()
        valid = csr.is_signature_valid
    except (ValueError, TypeError, InvalidSignature):
        return None, f"enclave {item.enclave}: the CSR is not a readable PKCS#10 request"
    if not valid:
        return None, f"enclave {item.enclave}: the CSR's signature does not verify (no proof of the new key)"
    if subject != subject_name(item.enclave):
        return None, f"enclave {item.enclave}: CSR subject {subject!r}, expected {subject_name(item.enclave)!r}"
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return None, f"enclave {item.enclave}: CSR key {_describe(key)}, expected {REQUIRED_KEY}"
    return csr, None


def _describe(key: object) -> str:
    size = getattr(key, "key_size", None)
    return f"{type(key).__name__.replace('_', '')}{f' {size} bits' if size else ''}"


def check_enrollment_item(host: str, item: RequestItem, facts: AuthorityFacts) -> str | None:
    """Why an enrollment item cannot be signed, or None."""
    return _assigned(facts, host, item.enclave) or check_csr(item)[1]


def check_identity(request: HostRequest, item: RequestItem, facts: AuthorityFacts) -> tuple[x509.Certificate | None,
                                                                                            str | None]:
    """The current certificate of a renewal or CRL item when it proves the identity, else the reason."""
    enclave, host = item.enclave, request.host
    reason = _assigned(facts, host, enclave)
    if reason:
        return None, reason
    if item.certificate is None or item.signature is None:
        return None, f"enclave {enclave}: expected the current certificate and a signature by its key"
    try:
        cert = x509.load_pem_x509_certificate(item.certificate)
        cert.verify_directly_issued_by(facts.identity_ca)
    except (ValueError, TypeError, InvalidSignature):
        return None, f"enclave {enclave}: the certificate is not one issued by this cell's identity CA"
    if cert.subject.rfc4514_string() != subject_name(enclave):
        return None, f"enclave {enclave}: the certificate is {cert.subject.rfc4514_string()!r}'s"
    serial = format(cert.serial_number, "x")
    if not cert.not_valid_before_utc <= facts.now < cert.not_valid_after_utc:
        return None, (f"enclave {enclave}: the certificate expired {iso_utc(cert.not_valid_after_utc)}; "
                      "enroll again by hand (host request / host sign)")
    if is_revoked(facts.crl, cert):
        return None, f"enclave {enclave}: certificate {serial} is revoked; enroll again by hand"
    if not facts.view.accepts_serial(enclave, serial):
        return None, (f"enclave {enclave}: certificate {serial} was not issued to host {host} "
                      "(foreign identity); enroll again by hand")
    if not verify_bytes(request.signed_bytes(item), item.signature, cert):
        return None, f"enclave {enclave}: the signature is not by the key of certificate {serial} (tampered?)"
    return cert, None


def check_renewal_item(request: HostRequest, item: RequestItem, facts: AuthorityFacts) -> str | None:
    """Why a renewal item cannot be signed, or None (see the module docstring)."""
    cert, reason = check_identity(request, item, facts)
    if cert is None:
        return reason
    if not is_due(cert.not_valid_after_utc, facts.policy.lifetimes.renew_before, facts.now):
        start = cert.not_valid_after_utc - facts.policy.lifetimes.renew_before
        return f"enclave {item.enclave}: not inside its renew window before {iso_utc(start)}"
    csr, reason = check_csr(item)
    if csr is None:
        return reason
    current: PublicKey = cert.public_key()  # type: ignore[assignment]
    if csr.public_key().public_numbers() == current.public_numbers():  # type: ignore[union-attr]
        return f"enclave {item.enclave}: the CSR reuses the current key; a renewal needs a new key"
    return None


class RateLimit:
    """At most ``count`` requests per host within ``window`` (an online authority's guard)."""

    def __init__(self, count: int, window: _dt.timedelta) -> None:
        """Allow ``count`` requests per ``window`` and host.

        :raises InputError: ``count`` below 1 or a non-positive window.
        """
        if count < 1 or window <= _dt.timedelta(0):
            raise InputError(None, "rate_limit", "at least 1 request per positive window", f"{count} per {window}")
        self.count = count
        self.window = window
        self._seen: dict[str, deque[_dt.datetime]] = {}

    def allow(self, host: str, now: _dt.datetime) -> bool:
        """Count a request of ``host`` at ``now``; False when it is over the limit (not counted)."""
        times = self._seen.setdefault(host, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.count:
            return False
        times.append(now)
        return True
