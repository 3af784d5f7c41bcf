"""The CA key pairs of a keystore: load (decrypt, check) and hold them for one transaction.

Only the CA machine's keystore holds ``private/``; a host keystore has the public certificates
alone, and anything that needs a CA key says so naming the missing file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from cobot_security.errors import KeystoreError
from cobot_security.keystore import pki
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import KeystoreLayout


@dataclass(frozen=True)
class CaPair:
    """A CA certificate with its private key."""

    cert: x509.Certificate
    key: pki.PrivateKey


@dataclass(frozen=True)
class CaCertificates:
    """The identity and permissions CA certificates (the same one in single-CA mode)."""

    identity: x509.Certificate
    permissions: x509.Certificate


@dataclass(frozen=True)
class CaKeys:
    """The identity and permissions CAs (the same pair in a single-CA keystore)."""

    identity: CaPair
    permissions: CaPair


def _load_ca(layout: KeystoreLayout, cert_path: Path, key_path: Path, passphrase: bytes | None) -> CaPair:
    cert = pki.load_certificate(read_keystore_file(layout, cert_path), cert_path)
    if not os.path.lexists(key_path):
        raise KeystoreError(key_path, "expected the CA private key here to change the keystore, found none "
                                      "(a host keystore holds no CA keys: run this on the CA machine)")
    key = pki.load_private_key(read_keystore_file(layout, key_path), passphrase, key_path)
    if not pki.key_matches_certificate(key, cert):
        raise KeystoreError(key_path, f"expected the private key of {cert_path.name}, got another key")
    return CaPair(cert, key)


def load_ca_keys(layout: KeystoreLayout, passphrase: bytes | None) -> CaKeys:
    """Both CA pairs, decrypted with ``passphrase``.

    :raises PassphraseError: the keys cannot be decrypted.
    :raises KeystoreError: a key is missing, refused (planted link, foreign owner) or not the
        certificate's.
    """
    return CaKeys(_load_ca(layout, layout.identity_ca_cert, layout.identity_ca_key, passphrase),
                  _load_ca(layout, layout.permissions_ca_cert, layout.permissions_ca_key, passphrase))
