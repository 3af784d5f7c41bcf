"""X.509 building blocks for the keystore: keys, CAs and enclave certificates (pure, time passed in).

Everything takes and returns cryptography objects or PEM bytes; nothing here touches the file
system or the clock.  Enclave certificate subjects are ``CN=<enclave path>`` exactly as the
permissions grant names them, because the DDS access-control plugin compares the two strings.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cobot_security.errors import InputError, KeystoreError, PassphraseError

#: Private keys the keystore can create; EC P-256 is what sros2 and the DDS Security plugins use.
KEY_TYPES: tuple[str, ...] = ("ec-p256", "rsa-2048")

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]
PublicKey = Union[ec.EllipticCurvePublicKey, rsa.RSAPublicKey]

_PASSPHRASE_HINT = (
    "expected the passphrase this CA key was encrypted with "
    "(set it with --passphrase-env VAR or enter it at the prompt)"
)


def generate_private_key(key_type: str = "ec-p256") -> PrivateKey:
    """A fresh private key of ``key_type`` (one of :data:`KEY_TYPES`).

    :raises InputError: for an unknown key type.
    """
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise InputError(None, "key_type", "one of " + ", ".join(KEY_TYPES), repr(key_type))


def _key_usage(*, digital_signature: bool = False, key_encipherment: bool = False,
               key_agreement: bool = False, key_cert_sign: bool = False,
               crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(
    common_name: str,
    key: PrivateKey,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
) -> x509.Certificate:
    """A self-signed CA certificate for ``key`` with subject ``CN=<common_name>``.

    digitalSignature is set besides keyCertSign/cRLSign because the permissions CA itself signs
    the governance and permissions S/MIME documents, and OpenSSL's default S/MIME signing
    purpose requires it when a KeyUsage extension is present.  pathlen 0: the CA signs leaves only.
    """
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue_certificate(
    subject: str,
    public_key: PublicKey,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
) -> x509.Certificate:
    """An end-entity certificate for ``public_key`` with RFC 4514 ``subject``, signed by the CA.

    :raises InputError: when ``subject`` is not an RFC 4514 distinguished name.
    """
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        raise InputError(None, "subject", "an RFC 4514 name like CN=/cell/arm_driver", repr(subject)) from None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        usage = _key_usage(digital_signature=True, key_agreement=True)
    else:
        usage = _key_usage(digital_signature=True, key_encipherment=True)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def make_csr(subject: str, key: PrivateKey) -> bytes:
    """A PEM PKCS#10 request for ``key`` with RFC 4514 ``subject``, self-signed (proof of possession).

    :raises InputError: when ``subject`` is not an RFC 4514 distinguished name.
    """
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        raise InputError(None, "subject", "an RFC 4514 name like CN=/cell/arm_driver", repr(subject)) from None
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: PrivateKey, passphrase: bytes | None) -> bytes:
    """PKCS#8 PEM of ``key``, encrypted with the best available cipher when a passphrase is given.

    :raises InputError: for an empty passphrase (it would silently mean "no protection").
    """
    if passphrase is not None and not passphrase:
        raise InputError(None, "passphrase", "a non-empty passphrase or none at all", "an empty one")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_private_key(pem: bytes, passphrase: bytes | None, source: Path) -> PrivateKey:
    """Load a PEM private key; ``source`` only names the file in errors.

    :raises PassphraseError: the key is encrypted and the passphrase is missing or wrong, or a
        passphrase was given for a key that is not encrypted.
    :raises KeystoreError: the bytes are not a supported PEM private key.
    """
    encrypted = b"ENCRYPTED" in pem.split(b"\n", 1)[0] or b"Proc-Type: 4,ENCRYPTED" in pem
    if encrypted and not passphrase:
        raise PassphraseError(source, f"passphrase: {_PASSPHRASE_HINT}, got none")
    if not encrypted and passphrase:
        raise PassphraseError(source, "passphrase: expected none, this key is not encrypted")
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase if encrypted else None)
    except (ValueError, TypeError):
        # The underlying message is not re-used: it is generic and we never echo secrets.
        if encrypted:
            raise PassphraseError(source, f"passphrase: {_PASSPHRASE_HINT}") from None
        raise KeystoreError(source, "expected a PEM private key (EC P-256 or RSA)") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise KeystoreError(source, f"expected an EC or RSA private key, got {type(key).__name__}")
    return key


def load_certificate(pem: bytes, source: Path) -> x509.Certificate:
    """Load one PEM certificate; ``source`` only names the file in errors.

    :raises KeystoreError: the bytes are not a PEM X.509 certificate.
    """
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise KeystoreError(source, "expected a PEM X.509 certificate") from None


def key_matches_certificate(key: PrivateKey, cert: x509.Certificate) -> bool:
    """Whether ``cert`` carries the public half of ``key`` (same public numbers).

    A certificate whose key is neither EC nor RSA (or one cryptography cannot load, e.g. SM2)
    cannot match a keystore private key.
    """
    try:
        cert_key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return False
    if not isinstance(cert_key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        return False
    return key.public_key().public_numbers() == cert_key.public_numbers()


def certificate_pem(cert: x509.Certificate) -> bytes:
    """PEM bytes of ``cert``."""
    return cert.public_bytes(serialization.Encoding.PEM)


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of the DER certificate as lowercase hex pairs joined by ':'."""
    return cert.fingerprint(hashes.SHA256()).hex(":")
