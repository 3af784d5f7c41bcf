"""Sign and verify the governance and permissions documents as detached S/MIME (SHA-256, text).

The Cyclone DDS access-control plugin reads these files with ``SMIME_read_PKCS7`` and checks them
with ``PKCS7_verify(..., certs=[permissions CA], flags=PKCS7_TEXT | PKCS7_NOVERIFY |
PKCS7_NOINTERN)``: the signed part must be ``text/plain`` and the signer must be the permissions
CA certificate itself.  :func:`verify_smime` asks the ``openssl`` command for the same checks
(``-text -nointern -certfile CA``) plus a chain check against the CA (``-CAfile``).

Signing builds what ``openssl smime -sign -text`` builds: the document is canonicalised (CRLF line
ends, RFC 5751 3.1.1), prefixed with a ``Content-Type: text/plain`` header, signed as a detached
PKCS#7 SignedData (cryptography, DER) and put into a ``multipart/signed`` envelope assembled
here.  cryptography's own S/MIME encoding builds the same envelope through the ``email`` package,
which cost 20 times the signature itself (issue 11).
"""

from __future__ import annotations

import base64
import datetime as _dt
import re
import secrets
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from cobot_security.errors import KeystoreError
from cobot_security.keystore.pki import PrivateKey

_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]+)"?', re.IGNORECASE)


#: The header ``-text`` signs in front of the document, and the MIME part that carries it.
TEXT_HEADER = b"Content-Type: text/plain\r\n\r\n"
_SIGN_OPTIONS = (pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary)
_BASE64_LINE = 64  # OpenSSL's and cryptography's line length for the signature part


def canonical_text(data: bytes) -> bytes:
    """``data`` with every line ended by CRLF, as OpenSSL's text mode reads it (trailing CRs dropped)."""
    lines = data.split(b"\n")
    return b"\r\n".join(line.rstrip(b"\r") for line in lines)


def _envelope(signed: bytes, signature_der: bytes) -> bytes:
    """The multipart/signed text around the signed part (headers and text) and the DER signature."""
    encoded = base64.b64encode(signature_der)
    lines = b"\r\n".join(encoded[i:i + _BASE64_LINE] for i in range(0, len(encoded), _BASE64_LINE))
    boundary = b"----" + secrets.token_hex(16).upper().encode()
    while b"--" + boundary in signed:  # never, but a delimiter inside the text would cut it
        boundary = b"----" + secrets.token_hex(16).upper().encode()
    return b"".join((
        b'MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol="application/x-pkcs7-signature"; '
        b'micalg="sha-256"; boundary="', boundary, b'"\r\n\r\nThis is an S/MIME signed message\r\n\r\n',
        b"--", boundary, b"\r\n", signed, b"\r\n",
        b"--", boundary, b'\r\nContent-Type: application/x-pkcs7-signature; name="smime.p7s"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="smime.p7s"\r\n\r\n', lines, b"\r\n\r\n",
        b"--", boundary, b"--\r\n",
    ))


def sign_smime(data: bytes, signer_cert: x509.Certificate, signer_key: PrivateKey) -> bytes:
    """Detached, SHA-256, text-mode S/MIME signature of ``data`` (the only form Cyclone accepts).

    The signed bytes are the MIME part itself (header and canonical text), so that a verifier
    reading the part back digests exactly what it reads; the line break before the next delimiter
    belongs to the delimiter (RFC 2046 5.1.1), not to the signed text.
    """
    signed = TEXT_HEADER + canonical_text(data)
    signature = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(signed)
        .add_signer(signer_cert, signer_key, hashes.SHA256())
        .sign(serialization.Encoding.DER, _SIGN_OPTIONS)
    )
    return _envelope(signed, signature)


def _from_canonical(text: bytes) -> bytes:
    # S/MIME canonicalises text to CRLF line ends (RFC 5751 3.1.1); our documents use LF.
    return text.replace(b"\r\n", b"\n")


def extract_smime_content(p7s: bytes, source: str | Path = "<p7s>") -> bytes:
    """The signed text of a multipart/signed document, WITHOUT verifying the signature.

    :raises KeystoreError: when ``p7s`` is not a multipart/signed message with a text/plain part.
    """
    header, _, body = _from_canonical(p7s).partition(b"\n\n")
    match = _BOUNDARY.search(header)
    if b"multipart/signed" not in header.lower() or match is None:
        raise KeystoreError(source, "expected an S/MIME multipart/signed document")
    parts = body.split(b"--" + match.group(1))
    if len(parts) < 3:
        raise KeystoreError(source, "expected an S/MIME multipart/signed document with two parts")
    first = parts[1]
    first = first[1:] if first.startswith(b"\n") else first
    part_header, sep, content = first.partition(b"\n\n")
    if not sep or b"text/plain" not in part_header.lower():
        raise KeystoreError(source, "signed part: expected Content-Type text/plain")
    # The line break before the next delimiter belongs to the delimiter (RFC 2046 5.1.1).
    return content[:-1] if content.endswith(b"\n") else content


def verify_smime(
    p7s: bytes,
    ca_cert_pem_path: Path,
    *,
    at: _dt.datetime | None = None,
    source: str | Path = "<p7s>",
    timeout_s: float = 30.0,
) -> bytes:
    """Verify ``p7s`` was signed by the CA in ``ca_cert_pem_path``; return the signed text (LF).

    ``at`` checks the CA's validity at that time instead of the wall clock.

    :raises KeystoreError: the signature does not verify, the part is not text/plain, the signer is
        not the CA itself, or ``openssl`` is missing or timed out.
    """
    command = [
        "openssl", "smime", "-verify", "-text", "-nointern",
        "-certfile", str(ca_cert_pem_path), "-CAfile", str(ca_cert_pem_path), "-purpose", "any",
    ]
    if at is not None:
        command += ["-attime", str(int(at.timestamp()))]
    try:
        result = subprocess.run(command, input=p7s, capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise KeystoreError(source, "S/MIME verification needs the openssl command on PATH") from None
    except subprocess.TimeoutExpired:
        raise KeystoreError(source, f"openssl smime -verify did not finish in {timeout_s:g} s") from None
    if result.returncode != 0:
        reason = next(
            (line.strip() for line in result.stderr.decode("utf-8", "replace").splitlines()
             if line.strip() and line.strip() != "Verification failure"),
            "unknown error",
        )
        raise KeystoreError(
            source,
            f"S/MIME signature: expected a valid text signature by {ca_cert_pem_path}, got {reason}",
        )
    return _from_canonical(result.stdout)
