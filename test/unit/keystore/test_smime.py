"""smime: text-mode detached signatures that openssl verifies the way the Cyclone plugin does."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from cobot_security.errors import KeystoreError
from cobot_security.keystore import pki
from cobot_security.keystore.smime import (
    TEXT_HEADER,
    canonical_text,
    extract_smime_content,
    sign_smime,
    verify_smime,
)

DOC = b'<?xml version="1.0" encoding="UTF-8"?>\n<dds>\n  <permissions/>\n</dds>\n'
HOUR = dt.timedelta(hours=1)


def _ca(tmp_path: Path, now: dt.datetime, name: str = "ca") -> tuple[x509.Certificate, pki.PrivateKey, Path]:
    key = pki.generate_private_key()
    cert = pki.make_ca(name, key, now - HOUR, now + dt.timedelta(days=1))
    path = tmp_path / f"{name}.cert.pem"
    path.write_bytes(pki.certificate_pem(cert))
    return cert, key, path


def test_signature_is_detached_text_smime_and_verifies(tmp_path: Path, fixed_now: dt.datetime) -> None:
    cert, key, ca_path = _ca(tmp_path, fixed_now)
    p7s = sign_smime(DOC, cert, key)
    assert b"multipart/signed" in p7s and b'micalg="sha-256"' in p7s
    assert b"Content-Type: text/plain" in p7s
    assert verify_smime(p7s, ca_path, at=fixed_now) == DOC
    assert extract_smime_content(p7s) == DOC


def test_tampered_content_fails(tmp_path: Path, fixed_now: dt.datetime) -> None:
    cert, key, ca_path = _ca(tmp_path, fixed_now)
    p7s = sign_smime(DOC, cert, key).replace(b"<permissions/>", b"<permissions />")
    with pytest.raises(KeystoreError, match="S/MIME signature: expected a valid text signature") as info:
        verify_smime(p7s, ca_path, at=fixed_now, source="enclaves/a/permissions.p7s")
    assert str(info.value).startswith("enclaves/a/permissions.p7s: ")


def test_foreign_ca_fails(tmp_path: Path, fixed_now: dt.datetime) -> None:
    cert, key, _ = _ca(tmp_path, fixed_now, "ours")
    _, _, foreign_path = _ca(tmp_path, fixed_now, "foreign")
    with pytest.raises(KeystoreError, match="expected a valid text signature"):
        verify_smime(sign_smime(DOC, cert, key), foreign_path, at=fixed_now)


def test_signer_must_be_the_ca_itself_as_cyclone_requires(tmp_path: Path, fixed_now: dt.datetime) -> None:
    # Cyclone verifies with PKCS7_NOINTERN and certs=[permissions CA]: a CA-issued leaf is not enough.
    ca_cert, ca_key, ca_path = _ca(tmp_path, fixed_now)
    leaf_key = pki.generate_private_key()
    leaf = pki.issue_certificate("CN=/a", leaf_key.public_key(), ca_cert, ca_key, fixed_now - HOUR, fixed_now + HOUR)
    with pytest.raises(KeystoreError, match="expected a valid text signature"):
        verify_smime(sign_smime(DOC, leaf, leaf_key), ca_path, at=fixed_now)


def test_ca_validity_is_checked_at_the_given_time(tmp_path: Path, fixed_now: dt.datetime) -> None:
    cert, key, ca_path = _ca(tmp_path, fixed_now)
    with pytest.raises(KeystoreError, match="expected a valid text signature"):
        verify_smime(sign_smime(DOC, cert, key), ca_path, at=fixed_now + dt.timedelta(days=2))


def test_extract_rejects_non_smime() -> None:
    with pytest.raises(KeystoreError, match="expected an S/MIME multipart/signed document"):
        extract_smime_content(b"<dds/>")


def test_sros2_governance_oracle_verifies_and_extracts(sros2_example: Path) -> None:
    example = sros2_example
    p7s = (example / "governance.p7s").read_bytes()
    ca = example / "keystore_public" / "ca.cert.pem"
    at = pki.load_certificate(ca.read_bytes(), ca).not_valid_before_utc + HOUR
    content = verify_smime(p7s, ca, at=at)
    assert content == extract_smime_content(p7s)
    assert content.rstrip(b"\n") == (example / "governance.xml").read_bytes().rstrip(b"\n")


def _normalised(p7s: bytes) -> bytes:
    """``p7s`` with its boundary and base64 signature replaced by fixed words."""
    boundary = re.search(rb'boundary="([^"]+)"', p7s)
    assert boundary is not None
    text = p7s.replace(boundary.group(1), b"BOUNDARY")
    return re.sub(rb'(filename="smime.p7s"\r\n\r\n)[A-Za-z0-9+/=\r\n]+?(\r\n\r\n--BOUNDARY--)', rb"\1SIG\2", text)


def _signature_der(p7s: bytes) -> bytes:
    encoded = p7s.split(b'filename="smime.p7s"\r\n\r\n')[1].split(b"\r\n\r\n")[0]
    return base64.b64decode(encoded)


@pytest.mark.parametrize("doc", [DOC, b"<dds/>", b"a\r\nb\r\n", b"a\n\n\n", b"trailing space \n"],
                         ids=["lf", "no-final-newline", "crlf", "blank-lines", "trailing-space"])
def test_envelope_is_what_cryptography_s_email_encoder_builds(tmp_path: Path, fixed_now: dt.datetime,
                                                               doc: bytes) -> None:
    """Same MIME text and the same signed bytes as cryptography's Encoding.SMIME (issue 11), and it verifies."""
    cert, key, ca_path = _ca(tmp_path, fixed_now)
    ours = sign_smime(doc, cert, key)
    reference = (pkcs7.PKCS7SignatureBuilder().set_data(doc).add_signer(cert, key, hashes.SHA256())
                 .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.Text, pkcs7.PKCS7Options.DetachedSignature]))
    assert _normalised(ours) == _normalised(reference)
    signed = TEXT_HEADER + canonical_text(doc)
    assert hashlib.sha256(signed).digest() in _signature_der(ours)  # the messageDigest attribute
    assert hashlib.sha256(signed).digest() in _signature_der(reference)
    assert verify_smime(ours, ca_path, at=fixed_now) == doc.replace(b"\r\n", b"\n")


def test_signature_part_is_a_detached_signed_data_by_the_signer(tmp_path: Path, fixed_now: dt.datetime) -> None:
    cert, key, _ = _ca(tmp_path, fixed_now)
    der = _signature_der(sign_smime(DOC, cert, key))
    assert pkcs7.load_der_pkcs7_certificates(der) == [cert]
    assert DOC.replace(b"\n", b"\r\n") not in der  # detached: the text is not inside
