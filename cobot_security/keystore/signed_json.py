"""Signed JSON documents: canonical encoding, raw signatures, and the envelope the authority seals.

Two uses (docs/deployment.md, "Document formats"):

* a renewal request's items are each signed by the enclave's *current* identity key over the
  canonical JSON of the request header and the item (:func:`sign_bytes`, :func:`verify_bytes`);
* everything the authority sends to a host (bundle, enrollment answer, renewal answer) is an
  envelope ``{"format", "signer_sha256", "payload", "signature"}`` whose payload is the canonical
  JSON of the document, signed by the permissions CA (:func:`seal_document`, :func:`open_document`).

Signatures are ECDSA P-256/SHA-256 or RSA PKCS#1 v1.5/SHA-256 made with ``cryptography`` in
process, so a node verifies an answer without spawning ``openssl``.  Input is hostile: sizes are
bounded before parsing and every failure is an :class:`~cobot_security.errors.InputError` naming
the source and the field.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from cobot_security.clock import iso_utc
from cobot_security.errors import InputError
from cobot_security.json_input import parse_json
from cobot_security.keystore import pki

ENVELOPE_FORMAT = "cobot_security.signed/1"
#: A bundle of a host with many enclaves stays far below this; anything larger is not ours.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_ENVELOPE_KEYS = frozenset({"format", "signer_sha256", "payload", "signature"})


def canonical_json(value: object) -> bytes:
    """The one byte encoding that is signed: sorted keys, no spaces, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign_bytes(data: bytes, key: pki.PrivateKey) -> bytes:
    """A SHA-256 signature of ``data`` by ``key`` (ECDSA DER, or RSA PKCS#1 v1.5)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def verify_bytes(data: bytes, signature: bytes, cert: x509.Certificate) -> bool:
    """Whether ``signature`` over ``data`` was made by the key of ``cert`` (False for a key
    cryptography cannot use, e.g. a planted SM2 certificate)."""
    try:
        public = cert.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def b64encode(data: bytes) -> str:
    """Base64 text of ``data`` (standard alphabet, padded)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, source: str | Path, field: str, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of base64 ``text``.

    :raises InputError: not a string, not base64, or longer than ``limit`` once decoded.
    """
    if not isinstance(text, str) or len(text) > (limit * 4) // 3 + 4:
        raise InputError(source, field, f"base64 text of at most {limit} bytes", _kind(text))
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InputError(source, field, "base64 text", "other characters") from None


def _kind(value: object) -> str:
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return "nothing" if value is None else f"a {type(value).__name__}"


def load_json_object(data: bytes, source: str | Path, what: str, limit: int = MAX_DOCUMENT_BYTES) -> dict[str, Any]:
    """A JSON object from at most ``limit`` bytes of UTF-8.

    :raises InputError: too large, not UTF-8 JSON, or not an object.
    """
    if len(data) > limit:
        raise InputError(source, None, f"{what} of at most {limit} bytes", f"{len(data)} bytes")
    try:
        document = parse_json(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InputError(source, None, f"{what} (JSON)", "unreadable JSON") from None
    if not isinstance(document, dict):
        raise InputError(source, None, f"{what} (a JSON object)", _kind(document))
    return document


def seal_document(payload: dict[str, Any], signer_cert: x509.Certificate, signer_key: pki.PrivateKey) -> bytes:
    """The envelope of ``payload`` signed by ``signer_key`` (one line of JSON, newline-terminated)."""
    body = canonical_json(payload)
    envelope = {"format": ENVELOPE_FORMAT, "signer_sha256": pki.fingerprint_sha256(signer_cert),
                "payload": b64encode(body), "signature": b64encode(sign_bytes(body, signer_key))}
    return canonical_json(envelope) + b"\n"


def open_document(data: bytes, trusted: x509.Certificate, now: _dt.datetime, source: str | Path) -> dict[str, Any]:
    """The payload of an envelope signed by ``trusted`` itself, which must be valid at ``now``.

    :raises InputError: not an envelope, signed by another certificate ("another CA"), a
        signature that does not verify (tampered), an expired or not yet valid CA, or a payload
        that is not a JSON object.
    """
    envelope = load_json_object(data, source, "a signed cobot_security document")
    if envelope.get("format") != ENVELOPE_FORMAT or set(envelope) != _ENVELOPE_KEYS:
        raise InputError(source, "format", f"a signed document ({ENVELOPE_FORMAT})", repr(envelope.get("format")))
    expected = pki.fingerprint_sha256(trusted)
    if envelope.get("signer_sha256") != expected:
        raise InputError(source, "signer_sha256", f"a document signed by the pinned CA {expected[:23]}...",
                         f"one signed by another CA ({str(envelope.get('signer_sha256'))[:23]}...)")
    body = b64decode(envelope["payload"], source, "payload")
    signature = b64decode(envelope["signature"], source, "signature", 4096)
    if not verify_bytes(body, signature, trusted):
        raise InputError(source, "signature", "a signature by the pinned CA over the payload",
                         "one that does not verify (the document was changed after signing)")
    if not trusted.not_valid_before_utc <= now <= trusted.not_valid_after_utc:
        raise InputError(source, "signer_sha256", f"a CA certificate valid at {iso_utc(now)}",
                         f"one valid {iso_utc(trusted.not_valid_before_utc)} to {iso_utc(trusted.not_valid_after_utc)}")
    return load_json_object(body, source, "a signed payload")
