"""audit_endpoints: the rules for policies, modes, user tokens and the server certificate (no network)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from cobot_security import checks
from cobot_security.errors import InputError
from cobot_security.scan.opcua import (
    EndpointFacts,
    OpcUaRequirements,
    audit_endpoints,
    opcua_host,
)
from cobot_security.status import Level

URL = "opc.tcp://127.0.0.1:4840"
P = "http://opcfoundation.org/UA/SecurityPolicy#"
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)
NOT_AFTER = NOW + dt.timedelta(days=30)
_KEYS: dict[int, rsa.RSAPrivateKey] = {}


def cert(bits: int = 2048, algorithm: hashes.HashAlgorithm | None = None, ca: bool = False) -> bytes:
    key = _KEYS.setdefault(bits, rsa.generate_private_key(public_exponent=65537, key_size=bits))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "server")])
    issuer_key = _KEYS.setdefault(4096 if ca else bits, key if not ca else
                                  rsa.generate_private_key(public_exponent=65537, key_size=2048))
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cell CA")]) if ca else subject
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(7).not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOT_AFTER))
    return builder.sign(issuer_key, algorithm or hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def endpoint(policy: str = "Basic256Sha256", mode: int = 3, tokens: tuple[int, ...] = (1,),
             der: bytes | None = None) -> EndpointFacts:
    return EndpointFacts(URL, P + policy, mode, tokens, tuple((t, P + policy) for t in tokens),
                         cert() if der is None else der)


def one(endpoints: list[EndpointFacts], now: dt.datetime = NOW, **req: bool):
    [finding] = audit_endpoints(URL, endpoints, now, OpcUaRequirements(**req))
    assert (finding.check, finding.subject) == (checks.OPCUA_ENDPOINTS, URL)
    return finding


def test_hardened_endpoint_is_ok_with_evidence() -> None:
    finding = one([endpoint()])

    assert finding.level == Level.OK
    assert finding.value("security_modes") == "SignAndEncrypt"
    assert finding.value("user_token_types") == "UserName"
    assert "self-signed" in (finding.value("evidence") or "")


@pytest.mark.parametrize("policy, text", [
    ("None", "security policy None"),
    ("Basic128Rsa15", "deprecated security policy Basic128Rsa15"),
    ("Basic256", "deprecated security policy Basic256"),
])
def test_weak_policies_are_errors(policy: str, text: str) -> None:
    finding = one([endpoint(), endpoint(policy)])

    assert finding.level == Level.ERROR
    assert text in finding.message


def test_mode_none_and_sign_only() -> None:
    assert "message security mode None" in one([endpoint(mode=1)]).message
    sign_only = one([endpoint(mode=2)])
    tolerated = one([endpoint(mode=2)], require_encrypt=False)

    assert sign_only.level == Level.ERROR
    assert "Sign only, SignAndEncrypt required" in sign_only.message
    assert tolerated.level == Level.OK


def test_anonymous_token_and_cleartext_password() -> None:
    anonymous = one([endpoint(tokens=(0, 1))])
    cleartext = one([EndpointFacts(URL, P + "None", 1, (1,), ((1, ""),), b"")])

    assert anonymous.level == Level.ERROR
    assert "anonymous user token allowed" in anonymous.message
    assert "user name and password travel unencrypted" in cleartext.message


def test_certificate_expiry_boundary() -> None:
    just_before = one([endpoint()], now=NOT_AFTER - dt.timedelta(seconds=1))
    at = one([endpoint()], now=NOT_AFTER)
    just_after = one([endpoint()], now=NOT_AFTER + dt.timedelta(seconds=1))

    assert (just_before.level, at.level, just_after.level) == (Level.OK, Level.OK, Level.ERROR)
    assert "server certificate expired" in just_after.message


def test_self_signed_only_fails_when_a_ca_is_required() -> None:
    assert one([endpoint()], require_ca=True).level == Level.ERROR
    assert one([endpoint(der=cert(ca=True))], require_ca=True).level == Level.OK


def sha1_certificate(tmp_path: Path) -> bytes:
    """cryptography refuses to sign with SHA-1, so openssl makes the legacy certificate."""
    out = tmp_path / "sha1.der"
    subprocess.run(["openssl", "req", "-x509", "-sha1", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(tmp_path / "k.pem"), "-subj", "/CN=legacy", "-days", "30", "-outform", "DER", "-out",
                    str(out)], check=True, capture_output=True, timeout=60)
    return out.read_bytes()


def test_weak_keys_and_sha1(tmp_path: Path) -> None:
    small = one([endpoint(der=cert(bits=1024))])
    der = sha1_certificate(tmp_path)
    valid_at = x509.load_der_x509_certificate(der).not_valid_before_utc + dt.timedelta(days=1)
    sha1 = one([endpoint(der=der)], now=valid_at)

    assert small.level == Level.ERROR
    assert "RSA 1024 bits (< 2048)" in small.message
    assert sha1.level == Level.ERROR
    assert sha1.message == "server certificate signed with SHA1"


def test_missing_or_garbage_certificate_and_no_endpoints() -> None:
    assert "no server certificate" in one([endpoint(der=b"")]).message
    assert "not readable DER" in one([endpoint(der=b"garbage")]).message
    assert one([]).message == "server lists no endpoints"


def test_url_must_be_opc_tcp_with_port() -> None:
    assert opcua_host("opc.tcp://cell-pc:4840/path") == "cell-pc"
    with pytest.raises(InputError, match=r"url: expected an OPC UA URL opc.tcp://HOST:PORT, got 'http://x:1'"):
        opcua_host("http://x:1")
    with pytest.raises(InputError, match="got 'opc.tcp://x'"):
        opcua_host("opc.tcp://x")
