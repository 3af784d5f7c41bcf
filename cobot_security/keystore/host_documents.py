"""The documents that travel between a host and the authority: requests and packages (values only).

A **request** (host → authority) is JSON: ``kind`` (``enrollment``, ``renewal`` or ``crl``), the
``host``, a random ``nonce``, the ``time`` it was made, ``have`` (the host keystore's public tree,
path → SHA-256, so that the answer carries only what differs) and ``items``: per enclave a CSR and,
for a renewal, the current certificate and a signature by the current identity key over the
canonical JSON of ``{"request": <everything but the items>, "item": <the item without signature>}``.

A **package** (authority → host) is the payload of an envelope signed by the permissions CA
(:mod:`cobot_security.keystore.signed_json`): ``kind`` (``bundle``, ``enrollment``, ``renewal``,
``crl``), ``host``, ``policy``, ``created``, the ``nonce`` it answers, ``files`` (public files,
base64), ``keys`` (bundle only: enclave → private key), ``enclaves`` (manifest records),
``refused`` (enclave → reason) and ``integrity`` (the host keystore's integrity manifest signed by
the authority).  Parsing is strict and bounded: every path must be one the rmw layout defines.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, InvalidNameError
from cobot_security.keystore.integrity import LINK_PREFIX, SignedIntegrity, parse_integrity
from cobot_security.keystore.layout import (
    CERT,
    CRL,
    ENCLAVE_LINKS,
    GOVERNANCE_P7S,
    GOVERNANCE_XML,
    IDENTITY_CA_CERT,
    PERMISSIONS_CA_CERT,
    PERMISSIONS_P7S,
    PERMISSIONS_XML,
    SINGLE_CA_CERT,
)
from cobot_security.keystore.manifest import EnclaveRecord, record_from_json
from cobot_security.keystore.signed_json import b64decode, b64encode, canonical_json, load_json_object
from cobot_security.names import NameContext, validate_enclave_path, validate_host_name

REQUEST_FORMAT = "cobot_security.host_request"
PACKAGE_FORMAT = "cobot_security.host_package"
DOCUMENT_VERSION = 1
REQUEST_KINDS: tuple[str, ...] = ("enrollment", "renewal", "crl")
PACKAGE_KINDS: tuple[str, ...] = ("bundle", "enrollment", "renewal", "crl")
MAX_ITEMS = 256
MAX_FILES = 8192
MAX_FILE_BYTES = 256 * 1024
MAX_REQUEST_BYTES = 4 * 1024 * 1024
_NONCE = re.compile(r"[0-9a-f]{32}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_PUBLIC = frozenset({IDENTITY_CA_CERT, PERMISSIONS_CA_CERT, SINGLE_CA_CERT, CRL})
_GOVERNANCE = frozenset({GOVERNANCE_XML, GOVERNANCE_P7S})
#: Regular files of an enclave a package may carry (key.pem travels apart, bundles only).
ENCLAVE_PUBLIC_FILES: tuple[str, ...] = (CERT, PERMISSIONS_XML, PERMISSIONS_P7S)
_REQUEST_KEYS = frozenset({"format", "version", "kind", "host", "nonce", "time", "have", "items"})
_PACKAGE_KEYS = frozenset({"format", "version", "kind", "host", "policy", "created", "nonce", "files", "keys",
                           "enclaves", "refused", "integrity"})


def tree_path_enclave(path: str) -> str | None:
    """The enclave a host tree path belongs to (``enclaves/cell/arm/cert.pem`` → ``/cell/arm``), else None."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[0] == "enclaves":
        return "/" + "/".join(parts[1:-1])
    return None


def check_tree_path(path: object, source: str | Path, field_name: str, *, regular: bool) -> str:
    """``path`` if it is a file of a host keystore's public tree (``regular``: one a package may carry).

    :raises InputError: anything else (absolute, ``..``, hidden, a key, an unknown name).
    """
    expected = "a path of the rmw keystore layout (public/..., enclaves/governance.*, enclaves/<enclave>/<file>)"
    if not isinstance(path, str) or len(path) > 512:
        raise InputError(source, field_name, expected, repr(path)[:80])
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == "public" and parts[1] in _PUBLIC:
        return path
    if len(parts) == 2 and parts[0] == "enclaves" and parts[1] in _GOVERNANCE:
        return path
    enclave = tree_path_enclave(path)
    allowed = ENCLAVE_PUBLIC_FILES if regular else ENCLAVE_PUBLIC_FILES + ENCLAVE_LINKS + (CRL,)
    if enclave is not None and parts[-1] in allowed:
        try:
            validate_enclave_path(enclave, NameContext(file=str(source), field=field_name))
        except InvalidNameError:
            raise InputError(source, field_name, expected, repr(path)[:80]) from None
        return path
    raise InputError(source, field_name, expected, repr(path)[:80])


def _string(document: Mapping[str, Any], key: str, source: str | Path, expected: str, limit: int = 256) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InputError(source, key, expected, repr(value)[:80] if value is not None else "none")
    return value


def _time(document: Mapping[str, Any], key: str, source: str | Path) -> _dt.datetime:
    text = _string(document, key, source, "an ISO 8601 time with offset", 64)
    try:
        value = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(source, key, "an ISO 8601 time with offset", repr(text)) from None
    if value.tzinfo is None:
        raise InputError(source, key, "an ISO 8601 time with offset", repr(text))
    return value


def _header(document: Mapping[str, Any], source: str | Path, fmt: str, kinds: tuple[str, ...],
            keys: frozenset[str]) -> tuple[str, str, str]:
    """(kind, host, nonce) after checking format, version and that no unknown key is present."""
    if document.get("format") != fmt:
        raise InputError(source, "format", f"a {fmt} document", repr(document.get("format"))[:80])
    if document.get("version") != DOCUMENT_VERSION:
        raise InputError(source, "version", str(DOCUMENT_VERSION), repr(document.get("version"))[:40])
    unknown = sorted(set(document) - keys)
    if unknown:
        raise InputError(source, unknown[0], "only the keys " + ", ".join(sorted(keys)), "an unknown key")
    kind = document.get("kind")
    if kind not in kinds:
        raise InputError(source, "kind", "one of " + ", ".join(kinds), repr(kind)[:40])
    host = validate_host_name(_string(document, "host", source, "a host name", 63),
                              NameContext(file=str(source), field="host"))
    nonce = _string(document, "nonce", source, "32 lower-case hex digits", 32)
    if not _NONCE.fullmatch(nonce):
        raise InputError(source, "nonce", "32 lower-case hex digits", repr(nonce))
    return str(kind), host, nonce


@dataclass(frozen=True)
class RequestItem:
    """One enclave of a request: its CSR, and for a renewal the current certificate and signature."""

    enclave: str
    csr: bytes | None = None
    certificate: bytes | None = None
    signature: bytes | None = None

    def to_json(self, *, signed: bool = True) -> dict[str, str]:
        """The item as written (``signed=False``: without the signature, as it is signed)."""
        document = {"enclave": self.enclave}
        if self.csr is not None:
            document["csr"] = self.csr.decode("ascii")
        if self.certificate is not None:
            document["certificate"] = self.certificate.decode("ascii")
        if signed and self.signature is not None:
            document["signature"] = b64encode(self.signature)
        return document


@dataclass(frozen=True)
class HostRequest:
    """A request of ``host`` (see the module docstring)."""

    kind: str
    host: str
    nonce: str
    time: _dt.datetime
    items: tuple[RequestItem, ...] = ()
    have: Mapping[str, str] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        """Everything but the items: what every item signature also covers."""
        return {"format": REQUEST_FORMAT, "version": DOCUMENT_VERSION, "kind": self.kind, "host": self.host,
                "nonce": self.nonce, "time": iso_utc(self.time), "have": dict(sorted(self.have.items()))}

    def signed_bytes(self, item: RequestItem) -> bytes:
        """The bytes the current identity key signs for ``item``."""
        return canonical_json({"request": self.header(), "item": item.to_json(signed=False)})

    def to_bytes(self) -> bytes:
        """The request as written to a file or a message (canonical JSON, one line)."""
        return canonical_json({**self.header(), "items": [i.to_json() for i in self.items]}) + b"\n"

    def fingerprint(self) -> str:
        """SHA-256 of the request, for the operator to compare on both machines."""
        return hashlib.sha256(self.to_bytes()).hexdigest()


def _pem(item: Mapping[str, Any], key: str, source: str | Path, where: str, marker: bytes) -> bytes | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 16384 or marker not in value.encode("ascii", "replace"):
        raise InputError(source, f"{where}.{key}", f"PEM text with {marker.decode()}", repr(value)[:40])
    return value.encode("ascii", "replace")


def _request_item(raw: object, source: str | Path, where: str) -> RequestItem:
    if not isinstance(raw, dict) or set(raw) - {"enclave", "csr", "certificate", "signature"}:
        raise InputError(source, where, "an object with enclave, csr, certificate, signature", "something else")
    enclave = validate_enclave_path(_string(raw, "enclave", source, "an enclave path"),
                                    NameContext(file=str(source), field=f"{where}.enclave"))
    signature = b64decode(raw["signature"], source, f"{where}.signature", 4096) if "signature" in raw else None
    return RequestItem(enclave, _pem(raw, "csr", source, where, b"CERTIFICATE REQUEST"),
                       _pem(raw, "certificate", source, where, b"CERTIFICATE"), signature)


def _have(raw: object, source: str | Path) -> dict[str, str]:
    if not isinstance(raw, dict) or len(raw) > MAX_FILES:
        raise InputError(source, "have", f"an object of at most {MAX_FILES} paths", "something else")
    have: dict[str, str] = {}
    for path, digest in raw.items():
        check_tree_path(path, source, "have", regular=False)
        if not isinstance(digest, str) or not (_DIGEST.fullmatch(digest) or (
                digest.startswith(LINK_PREFIX) and len(digest) < 256)):
            raise InputError(source, f"have.{path}", "a SHA-256 or link:<target>", repr(digest)[:40])
        have[path] = digest
    return have


def parse_request(data: bytes, source: str | Path) -> HostRequest:
    """A request from its bytes, every field checked (see the module docstring).

    :raises InputError: naming the field that is wrong.
    """
    document = load_json_object(data, source, "a host request", MAX_REQUEST_BYTES)
    kind, host, nonce = _header(document, source, REQUEST_FORMAT, REQUEST_KINDS, _REQUEST_KEYS)
    items_raw = document.get("items")
    if not isinstance(items_raw, list) or len(items_raw) > MAX_ITEMS:
        raise InputError(source, "items", f"a list of at most {MAX_ITEMS} enclaves", "something else")
    items = tuple(_request_item(raw, source, f"items[{i}]") for i, raw in enumerate(items_raw))
    seen = [item.enclave for item in items]
    if len(set(seen)) != len(seen):
        raise InputError(source, "items", "each enclave once", "a repeated enclave")
    return HostRequest(kind, host, nonce, _time(document, "time", source), items,
                       _have(document.get("have", {}), source))


@dataclass(frozen=True)
class HostPackage:
    """What the authority sends a host (see the module docstring)."""

    kind: str
    host: str
    policy: str
    created: _dt.datetime
    nonce: str
    integrity: SignedIntegrity
    files: Mapping[str, bytes] = field(default_factory=dict)
    keys: Mapping[str, bytes] = field(default_factory=dict)
    records: Mapping[str, EnclaveRecord] = field(default_factory=dict)
    refused: Mapping[str, str] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """The payload the authority signs."""
        return {"format": PACKAGE_FORMAT, "version": DOCUMENT_VERSION, "kind": self.kind, "host": self.host,
                "policy": self.policy, "created": iso_utc(self.created), "nonce": self.nonce,
                "files": {p: b64encode(d) for p, d in sorted(self.files.items())},
                "keys": {p: b64encode(d) for p, d in sorted(self.keys.items())},
                "enclaves": {p: r.to_json() for p, r in sorted(self.records.items())},
                "refused": dict(sorted(self.refused.items())),
                "integrity": {"json": b64encode(self.integrity.data), "p7s": b64encode(self.integrity.p7s)}}

    def expected_tree(self) -> dict[str, str]:
        """The host tree the signed integrity manifest describes (path → digest or link)."""
        parsed = parse_integrity(self.integrity.data)
        assert parsed is not None  # checked by parse_package
        return parsed[0]


def _mapping(document: Mapping[str, Any], key: str, source: str | Path) -> dict[str, Any]:
    value = document.get(key, {})
    if not isinstance(value, dict) or len(value) > MAX_FILES:
        raise InputError(source, key, f"an object of at most {MAX_FILES} entries", "something else")
    return value


def _integrity(document: Mapping[str, Any], host: str, source: str | Path) -> SignedIntegrity:
    raw = document.get("integrity")
    if not isinstance(raw, dict) or set(raw) != {"json", "p7s"}:
        raise InputError(source, "integrity", "an object with json and p7s", "something else")
    signed = SignedIntegrity(b64decode(raw["json"], source, "integrity.json"),
                             b64decode(raw["p7s"], source, "integrity.p7s"))
    parsed = parse_integrity(signed.data)
    if parsed is None or parsed[1] != host:
        raise InputError(source, "integrity", f"a host integrity manifest for {host}", "another document")
    for path, digest in parsed[0].items():
        check_tree_path(path, source, "integrity.files", regular=not digest.startswith(LINK_PREFIX))
    return signed


def parse_package(payload: Mapping[str, Any], source: str | Path) -> HostPackage:
    """A package from an (already verified) envelope payload, every field checked.

    :raises InputError: naming the field that is wrong.
    """
    kind, host, nonce = _header(payload, source, PACKAGE_FORMAT, PACKAGE_KINDS, _PACKAGE_KEYS)
    files = {check_tree_path(p, source, "files", regular=True): b64decode(d, source, f"files.{p}", MAX_FILE_BYTES)
             for p, d in _mapping(payload, "files", source).items()}
    keys = {validate_enclave_path(p, NameContext(file=str(source), field="keys")):
            b64decode(d, source, f"keys.{p}", 16384) for p, d in _mapping(payload, "keys", source).items()}
    try:
        records = {validate_enclave_path(p, NameContext(file=str(source), field="enclaves")): record_from_json(p, r)
                   for p, r in _mapping(payload, "enclaves", source).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(source, "enclaves", "manifest records (serial, not_after, key_origin)", str(exc)) from None
    refused = {str(p): str(r)[:300] for p, r in _mapping(payload, "refused", source).items()}
    return HostPackage(kind, host, _string(payload, "policy", source, "the policy name"),
                       _time(payload, "created", source), nonce, _integrity(payload, host, source),
                       files, keys, records, refused)
