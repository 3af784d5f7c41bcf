"""Signing health messages with the sending enclave's identity key (ECDSA P-256, SHA-256).

:class:`HealthSigner` holds one enclave's key and certificate and numbers its messages; its
``seq`` is ``max(previous + 1, sent_at in microseconds since the epoch)``, so a restarted
reporter continues above everything it sent before (the supervisor accepts only increasing
seqs per reporter).  :class:`SignerSource` reads ``key.pem``/``cert.pem`` from the keystore with
the safe reader (no planted links, keystore owner only) and reloads them when a rotation
replaced them.  :func:`resolve_enclave` is the one rule for which enclave a node signs as.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cobot_security.errors import KeystoreError
from cobot_security.health.envelope import StatusRecord, canonical_bytes, envelope_record, format_sent_at
from cobot_security.keystore import pki
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import CERT, KEY, KeystoreLayout
from cobot_security.policy.model import WorkcellPolicy

__all__ = ["ENCLAVE_OVERRIDE_ENV", "HealthSigner", "SignerSource", "resolve_enclave"]

#: rcl's override of the enclave a process loads (it wins over ``--enclave``).
ENCLAVE_OVERRIDE_ENV = "ROS_SECURITY_ENCLAVE_OVERRIDE"


def resolve_enclave(environ: Mapping[str, str], rcl_enclave: str | None, policy: WorkcellPolicy | None,
                    node_fqn: str) -> str | None:
    """The enclave a node signs its health as, by the rule of docs/health.md ("Which key signs").

    1. ``ROS_SECURITY_ENCLAVE_OVERRIDE`` when set (rcl loads that enclave whatever ``--enclave`` says);
    2. else the enclave rcl gives the node (its ``--enclave`` argument) unless that is the root ``/``;
    3. else the policy enclave that lists the node's fully qualified name;
    4. else None: the node cannot sign (its health goes out unsigned with a health_signing ERROR).
    """
    override = environ.get(ENCLAVE_OVERRIDE_ENV, "").strip()
    if override:
        return override
    if rcl_enclave and rcl_enclave != "/":
        return rcl_enclave
    if policy is not None:
        for enclave in policy.enclaves:
            if any(node.fqn == node_fqn for node in enclave.nodes):
                return enclave.path
    return None


class HealthSigner:
    """One enclave's identity key and certificate: signs a message's statuses, one seq at a time."""

    def __init__(self, enclave: str, node: str, host: str, key: ec.EllipticCurvePrivateKey,
                 certificate: x509.Certificate) -> None:
        """Sign as ``enclave`` (node ``node`` on ``host``).

        :raises KeystoreError: the key is not EC P-256 or does not match the certificate.
        """
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise KeystoreError(enclave, "health signing: expected an EC P-256 enclave key")
        if not pki.key_matches_certificate(key, certificate):
            raise KeystoreError(enclave, "health signing: key.pem does not match cert.pem")
        self.enclave = enclave
        self.node = node
        self.host = host
        self._key = key
        self._certificate_der = certificate.public_bytes(serialization.Encoding.DER)
        self._seq = 0

    def next_seq(self, now: _dt.datetime) -> int:
        """``max(previous + 1, now in microseconds since the epoch)``."""
        self._seq = max(self._seq + 1, int(now.timestamp() * 1_000_000))
        return self._seq

    def continue_from(self, other: HealthSigner) -> None:
        """Keep numbering after ``other`` (the signer this one replaces after a key reload)."""
        self._seq = max(self._seq, other._seq)

    def sign(self, statuses: Sequence[StatusRecord], now: _dt.datetime) -> StatusRecord:
        """The signature status over ``statuses`` (append it last to the message).

        :raises UnicodeEncodeError: a status field is not UTF-8 encodable.
        """
        seq = self.next_seq(now)
        sent_at = format_sent_at(now)
        data = canonical_bytes(self.enclave, self.node, self.host, seq, sent_at, statuses)
        signature = self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        return envelope_record(self.enclave, self.node, self.host, seq, sent_at, self._certificate_der, signature)


@dataclass(frozen=True)
class _Stamp:
    key: tuple[int, int, int]
    cert: tuple[int, int, int]


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class SignerSource:
    """The signer of one enclave, read from the keystore and re-read when its files change."""

    def __init__(self, keystore: Path, enclave: str, node: str, host: str) -> None:
        self.layout = KeystoreLayout(Path(keystore))
        self.enclave = enclave
        self.node = node
        self.host = host
        self._signer: HealthSigner | None = None
        self._stamp: _Stamp | None = None

    def _load(self) -> HealthSigner:
        key_path = self.layout.enclave_file(self.enclave, KEY)
        cert_path = self.layout.enclave_file(self.enclave, CERT)
        key = pki.load_private_key(read_keystore_file(self.layout, key_path), None, key_path)
        certificate = pki.load_certificate(read_keystore_file(self.layout, cert_path), cert_path)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeystoreError(key_path, "health signing: expected an EC P-256 enclave key")
        return HealthSigner(self.enclave, self.node, self.host, key, certificate)

    def current(self) -> HealthSigner:
        """The signer, re-read when key.pem or cert.pem changed (a rotation swapped them).

        :raises KeystoreError: the files are missing, refused (planted link, foreign owner) or do not
            form a matching EC P-256 key and certificate.  Key material never appears in the message.
        """
        try:
            stamp = _Stamp(_stamp(self.layout.enclave_file(self.enclave, KEY)),
                           _stamp(self.layout.enclave_file(self.enclave, CERT)))
        except OSError as exc:
            raise KeystoreError(exc.filename or self.enclave, f"health signing: cannot read: {exc.strerror}") from None
        if self._signer is None or stamp != self._stamp:
            signer = self._load()
            if self._signer is not None:
                signer.continue_from(self._signer)
            self._signer, self._stamp = signer, stamp
        return self._signer
