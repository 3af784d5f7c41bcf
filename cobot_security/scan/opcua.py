"""OPC UA endpoint audit: list a server's endpoints (GetEndpoints) and judge their security.

The audit itself (:func:`audit_endpoints`) is pure: it takes :class:`EndpointFacts`, ``now`` and
the requirements and returns OPCUA_ENDPOINTS findings.  Only :func:`fetch_endpoints` talks to the
network (asyncua, bounded by a timeout).  Rules follow IEC 62443-3-3 SR 4.1/4.3 and OPC UA Part 7
(Basic128Rsa15 and Basic256 are deprecated security policies since OPC UA 1.04).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from cobot_security import checks
from cobot_security.errors import InputError
from cobot_security.status import Finding, Level, worst

__all__ = [
    "ACCEPTED_POLICIES",
    "DEPRECATED_POLICIES",
    "EndpointFacts",
    "OpcUaRequirements",
    "audit_endpoints",
    "fetch_endpoints",
    "opcua_host",
    "scan_opcua",
]

_POLICY_PREFIX = "http://opcfoundation.org/UA/SecurityPolicy#"
POLICY_NONE = _POLICY_PREFIX + "None"
#: Deprecated by OPC UA 1.04 (SHA-1, RSA-1.5 padding): never acceptable.
DEPRECATED_POLICIES = frozenset({_POLICY_PREFIX + "Basic128Rsa15", _POLICY_PREFIX + "Basic256"})
#: Current policies (OPC UA 1.04/1.05 Part 7).
ACCEPTED_POLICIES = frozenset(_POLICY_PREFIX + name for name in (
    "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss",
    "ECC_nistP256", "ECC_nistP384", "ECC_brainpoolP256r1", "ECC_brainpoolP384r1",
))
#: Message security modes and user token types as OPC UA numbers them (Part 4).
MODE_NAMES = {0: "Invalid", 1: "None", 2: "Sign", 3: "SignAndEncrypt"}
TOKEN_NAMES = {0: "Anonymous", 1: "UserName", 2: "Certificate", 3: "IssuedToken"}
_MODE_NONE, _MODE_SIGN, _MODE_SIGN_AND_ENCRYPT = 1, 2, 3
_TOKEN_ANONYMOUS, _TOKEN_USERNAME = 0, 1
MIN_RSA_BITS = 2048
MAX_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class EndpointFacts:
    """What one endpoint announces: URL, security policy URI and mode, token types, certificate."""

    url: str
    policy_uri: str
    mode: int
    token_types: tuple[int, ...]
    #: (token type, token security policy URI or "") per user token policy.
    token_policies: tuple[tuple[int, str], ...] = ()
    certificate_der: bytes = b""


@dataclass(frozen=True)
class OpcUaRequirements:
    """What the cell requires: SignAndEncrypt (else Sign is tolerated) and a CA-issued certificate."""

    require_encrypt: bool = True
    require_ca: bool = False


def _short_policy(uri: str) -> str:
    return uri[len(_POLICY_PREFIX):] if uri.startswith(_POLICY_PREFIX) else (uri or "(empty)")


def _endpoint_label(facts: EndpointFacts) -> str:
    return f"{_short_policy(facts.policy_uri)}/{MODE_NAMES.get(facts.mode, str(facts.mode))}"


def _certificate_problems(
    der: bytes, now: _dt.datetime, require_ca: bool
) -> tuple[list[tuple[Level, str]], list[str]]:
    """(problems, evidence) of a server certificate."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return [(Level.ERROR, "server certificate is not readable DER X.509")], []
    problems: list[tuple[Level, str]] = []
    not_after, not_before = cert.not_valid_after_utc, cert.not_valid_before_utc
    evidence = [f"certificate {cert.subject.rfc4514_string()} valid until {not_after.isoformat()}"]
    if now > not_after:
        problems.append((Level.ERROR, f"server certificate expired at {not_after.isoformat()}"))
    elif now < not_before:
        problems.append((Level.ERROR, f"server certificate not valid before {not_before.isoformat()}"))
    self_signed = False
    if cert.issuer == cert.subject:
        try:
            cert.verify_directly_issued_by(cert)
            self_signed = True
        except (InvalidSignature, ValueError, TypeError):
            self_signed = False
    if self_signed:
        evidence.append("self-signed")
        if require_ca:
            problems.append((Level.ERROR, "server certificate is self-signed but a CA-issued one is required"))
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        evidence.append(f"RSA {key.key_size} bits")
        if key.key_size < MIN_RSA_BITS:
            problems.append((Level.ERROR, f"server key RSA {key.key_size} bits (< {MIN_RSA_BITS})"))
    algorithm = cert.signature_hash_algorithm
    if isinstance(algorithm, (hashes.SHA1, hashes.MD5)):
        problems.append((Level.ERROR, f"server certificate signed with {algorithm.name.upper()}"))
    return problems, evidence


def _endpoint_problems(facts: EndpointFacts, requirements: OpcUaRequirements) -> list[tuple[Level, str]]:
    label = _endpoint_label(facts)
    problems: list[tuple[Level, str]] = []
    if facts.policy_uri == POLICY_NONE:
        problems.append((Level.ERROR, f"{label}: security policy None (no signing, no encryption)"))
    elif facts.policy_uri in DEPRECATED_POLICIES:
        problems.append((Level.ERROR, f"{label}: deprecated security policy {_short_policy(facts.policy_uri)}"))
    elif facts.policy_uri not in ACCEPTED_POLICIES:
        problems.append((Level.WARN, f"{label}: unrecognised security policy {facts.policy_uri!r}"))
    if facts.mode == _MODE_NONE:
        problems.append((Level.ERROR, f"{label}: message security mode None"))
    elif facts.mode == _MODE_SIGN and requirements.require_encrypt:
        problems.append((Level.ERROR, f"{label}: Sign only, SignAndEncrypt required"))
    elif facts.mode not in (_MODE_SIGN, _MODE_SIGN_AND_ENCRYPT):
        problems.append((Level.ERROR, f"{label}: invalid message security mode {facts.mode}"))
    if _TOKEN_ANONYMOUS in facts.token_types:
        problems.append((Level.ERROR, f"{label}: anonymous user token allowed"))
    unprotected = facts.policy_uri in ("", POLICY_NONE) or facts.mode == _MODE_NONE
    for token_type, token_policy in facts.token_policies:
        # A password sent over an unencrypted channel without its own token encryption is cleartext.
        if token_type == _TOKEN_USERNAME and unprotected and token_policy in ("", POLICY_NONE):
            problems.append((Level.ERROR, f"{label}: user name and password travel unencrypted"))
    return problems


def audit_endpoints(
    target: str, endpoints: Sequence[EndpointFacts], now: _dt.datetime, requirements: OpcUaRequirements
) -> list[Finding]:
    """One OPCUA_ENDPOINTS finding for ``target`` (the scanned URL) judging every endpoint it lists.

    ERROR for SecurityPolicy None or a deprecated policy, mode None, Sign-only where SignAndEncrypt
    is required, an anonymous user token, a cleartext password, and a server certificate that is
    missing (on a secure endpoint), expired, self-signed when a CA is required, RSA below 2048 bits
    or SHA-1 signed; OK with the evidence (policy URIs, modes, token types) otherwise.
    """
    if not endpoints:
        return [Finding(checks.OPCUA_ENDPOINTS, target, Level.ERROR, "server lists no endpoints")]
    problems: list[tuple[Level, str]] = []
    evidence: list[str] = []
    seen_certs: set[bytes] = set()
    for facts in endpoints:
        problems.extend(_endpoint_problems(facts, requirements))
        secure = facts.policy_uri not in ("", POLICY_NONE)
        if facts.certificate_der and facts.certificate_der not in seen_certs:
            seen_certs.add(facts.certificate_der)
            cert_problems, cert_evidence = _certificate_problems(facts.certificate_der, now, requirements.require_ca)
            problems.extend(cert_problems)
            evidence.extend(cert_evidence)
        elif secure and not facts.certificate_der:
            problems.append((Level.ERROR, f"{_endpoint_label(facts)}: no server certificate"))
    policies = sorted({facts.policy_uri for facts in endpoints})
    modes = sorted({MODE_NAMES.get(facts.mode, str(facts.mode)) for facts in endpoints})
    tokens = sorted({TOKEN_NAMES.get(t, str(t)) for facts in endpoints for t in facts.token_types})
    values = (
        ("endpoints", str(len(endpoints))),
        ("security_policies", " ".join(policies)),
        ("security_modes", " ".join(modes)),
        ("user_token_types", " ".join(tokens)),
        ("evidence", "; ".join(evidence)),
    )
    if problems:
        unique = list(dict.fromkeys(message for _, message in problems))
        return [Finding(checks.OPCUA_ENDPOINTS, target, worst(level for level, _ in problems),
                        "; ".join(unique), values)]
    summary = (f"{len(endpoints)} endpoint(s), policies {', '.join(_short_policy(p) for p in policies)}, "
               f"modes {', '.join(modes)}, user tokens {', '.join(tokens) or 'none'}")
    return [Finding(checks.OPCUA_ENDPOINTS, target, Level.OK, summary, values)]


def opcua_host(url: str) -> str:
    """The host of an ``opc.tcp://HOST:PORT[/path]`` URL.

    :raises InputError: for any other URL form.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "opc.tcp" or not parts.hostname or port is None:
        raise InputError(None, "url", "an OPC UA URL opc.tcp://HOST:PORT", repr(url))
    return parts.hostname


def _facts_of(description: object) -> EndpointFacts:
    tokens = tuple(getattr(description, "UserIdentityTokens", None) or ())
    return EndpointFacts(
        url=str(getattr(description, "EndpointUrl", "") or ""),
        policy_uri=str(getattr(description, "SecurityPolicyUri", "") or ""),
        mode=int(getattr(description, "SecurityMode", 0)),
        token_types=tuple(sorted({int(t.TokenType) for t in tokens})),
        token_policies=tuple((int(t.TokenType), str(t.SecurityPolicyUri or "")) for t in tokens),
        certificate_der=bytes(getattr(description, "ServerCertificate", b"") or b""),
    )


async def fetch_endpoints(url: str, timeout_s: float) -> list[EndpointFacts]:
    """GetEndpoints over a temporary secure channel (policy None, as discovery allows), bounded.

    :raises asyncio.TimeoutError: no answer within ``timeout_s``.
    :raises OSError: the server cannot be reached.
    """
    # Imported here: asyncua is heavy and only this adapter function needs it.
    from asyncua import Client

    client = Client(url, timeout=timeout_s)
    descriptions = await asyncio.wait_for(client.connect_and_get_server_endpoints(), timeout_s)
    return [_facts_of(description) for description in descriptions]


def scan_opcua(url: str, now: _dt.datetime, requirements: OpcUaRequirements, timeout_s: float = 5.0) -> list[Finding]:
    """Fetch ``url``'s endpoints and audit them; an unreachable server is one ERROR finding.

    :raises InputError: for a URL that is not ``opc.tcp://HOST:PORT`` or a timeout outside (0, 60].
    """
    opcua_host(url)
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise InputError(None, "--timeout", f"seconds in (0, {MAX_TIMEOUT_S:g}]", str(timeout_s))
    try:
        endpoints = asyncio.run(fetch_endpoints(url, timeout_s))
    except (asyncio.TimeoutError, TimeoutError):
        return [Finding(checks.OPCUA_ENDPOINTS, url, Level.ERROR, f"no answer within {timeout_s:g} s")]
    except Exception as exc:  # noqa: BLE001 - asyncua raises many types; any failure is "not audited"
        return [Finding(checks.OPCUA_ENDPOINTS, url, Level.ERROR,
                        f"endpoints could not be listed ({type(exc).__name__})")]
    return audit_endpoints(url, endpoints, now, requirements)
