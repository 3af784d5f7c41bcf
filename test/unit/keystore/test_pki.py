"""pki: CA and enclave certificates, subjects equal to the grant, encrypted keys, no secrets in errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cobot_security.errors import InputError, KeystoreError, PassphraseError
from cobot_security.keystore import pki
from cobot_security.policy.permissions import subject_name

HOUR = dt.timedelta(hours=1)


def _ca(now: dt.datetime) -> tuple[x509.Certificate, pki.PrivateKey]:
    key = pki.generate_private_key()
    return pki.make_ca("test CA", key, now - HOUR, now + dt.timedelta(days=10)), key


def test_ca_is_a_critical_ca_with_cert_signing(fixed_now: dt.datetime) -> None:
    cert, key = _ca(fixed_now)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert bc.critical and bc.value.ca
    assert ku.key_cert_sign and ku.crl_sign
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.not_valid_before_utc == fixed_now - HOUR
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    cert.verify_directly_issued_by(cert)


@pytest.mark.parametrize("key_type", pki.KEY_TYPES)
def test_leaf_chains_to_ca_and_subject_equals_grant_subject(fixed_now: dt.datetime, key_type: str) -> None:
    ca_cert, ca_key = _ca(fixed_now)
    key = pki.generate_private_key(key_type)
    leaf = pki.issue_certificate(subject_name("/cell/arm"), key.public_key(), ca_cert, ca_key,
                                 fixed_now - HOUR, fixed_now + HOUR)
    leaf.verify_directly_issued_by(ca_cert)
    assert leaf.subject.rfc4514_string() == subject_name("/cell/arm") == "CN=/cell/arm"
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert (leaf.not_valid_before_utc, leaf.not_valid_after_utc) == (fixed_now - HOUR, fixed_now + HOUR)
    assert isinstance(key, rsa.RSAPrivateKey if key_type == "rsa-2048" else ec.EllipticCurvePrivateKey)


def test_serials_are_random(fixed_now: dt.datetime) -> None:
    ca_cert, ca_key = _ca(fixed_now)
    key = pki.generate_private_key()
    serials = {pki.issue_certificate("CN=/a", key.public_key(), ca_cert, ca_key, fixed_now, fixed_now + HOUR)
               .serial_number for _ in range(3)}
    assert len(serials) == 3


def test_unknown_key_type_is_an_input_error() -> None:
    with pytest.raises(InputError, match="key_type: expected one of ec-p256, rsa-2048"):
        pki.generate_private_key("dsa")


def test_encrypted_key_round_trip_and_passphrase_errors(tmp_path: Path) -> None:
    key = pki.generate_private_key()
    secret = b"correct horse battery"
    pem = pki.private_key_pem(key, secret)
    source = tmp_path / "private" / "identity_ca.key.pem"
    assert b"ENCRYPTED PRIVATE KEY" in pem
    loaded = pki.load_private_key(pem, secret, source)
    assert loaded.public_key().public_numbers() == key.public_key().public_numbers()
    with pytest.raises(PassphraseError, match="passphrase: expected the passphrase this CA key") as wrong:
        pki.load_private_key(pem, b"wrong horse", source)
    with pytest.raises(PassphraseError, match="--passphrase-env VAR") as missing:
        pki.load_private_key(pem, None, source)
    for error in (wrong.value, missing.value):
        assert str(error).startswith(str(source))
        assert "horse" not in str(error)
        assert error.__cause__ is None


def test_plain_key_with_passphrase_and_garbage_are_reported(tmp_path: Path) -> None:
    pem = pki.private_key_pem(pki.generate_private_key(), None)
    assert b"BEGIN PRIVATE KEY" in pem
    with pytest.raises(PassphraseError, match="expected none, this key is not encrypted"):
        pki.load_private_key(pem, b"x", tmp_path / "k.pem")
    with pytest.raises(KeystoreError, match="expected a PEM private key"):
        pki.load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None, tmp_path / "k")
    with pytest.raises(KeystoreError, match="k.pem: expected a PEM X.509 certificate"):
        pki.load_certificate(b"nope", tmp_path / "k.pem")
    with pytest.raises(InputError, match="passphrase: expected a non-empty passphrase"):
        pki.private_key_pem(pki.generate_private_key(), b"")
