"""Our record of what the keystore holds (``.cobot_security/manifest.json``): one reader, one writer.

Per enclave: the current certificate's serial and expiry, the digest of the grant it was signed
with (:func:`cobot_security.policy.permissions.grant_digest`: what the signed permissions allow,
not how the policy spells it) and where its private key was born.  Keystore-wide: when it was
created, from which policy, single- or two-CA.

Version 1 (cobot_security ≤ 0.4) stored ``policy_sha256`` — a digest of the policy model's
``repr`` — instead of the grant digest; such entries are read with no grant digest, compared
through the permissions document on disk (:func:`grant_changed`), and rewritten as version 2 by
the next keystore transaction (:meth:`Manifest.migrated`).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from cobot_security.clock import iso_utc
from cobot_security.errors import KeystoreError
from cobot_security.json_input import parse_json
from cobot_security.keystore.layout import PERMISSIONS_XML, KeystoreLayout
from cobot_security.policy.model import Enclave, WorkcellPolicy
from cobot_security.policy.permissions import document_grant_digest, grant_digest

MANIFEST_VERSION = 2
#: Where an enclave's private key was generated: by this keystore (CA machine) or on its host.
KEY_ORIGINS: tuple[str, ...] = ("keystore", "host")


@dataclass(frozen=True)
class EnclaveRecord:
    """The manifest's entry for one enclave."""

    serial: str
    not_after: _dt.datetime
    grant_sha256: str | None = None  #: None only for entries read from a version 1 manifest
    key_origin: str = "keystore"

    def to_json(self) -> dict[str, str]:
        """The entry as written (version 2)."""
        document = {"serial": self.serial, "not_after": iso_utc(self.not_after), "key_origin": self.key_origin}
        if self.grant_sha256 is not None:
            document["grant_sha256"] = self.grant_sha256
        return document


@dataclass(frozen=True)
class Manifest:
    """The whole manifest; change it with :meth:`with_enclave` (values are immutable)."""

    created: _dt.datetime | None = None
    policy: str | None = None
    single_ca: bool | None = None
    enclaves: Mapping[str, EnclaveRecord] = field(default_factory=dict)
    version: int = MANIFEST_VERSION

    def with_enclave(self, path: str, record: EnclaveRecord) -> Manifest:
        """This manifest with ``path``'s entry replaced."""
        return replace(self, enclaves={**self.enclaves, path: record})

    def migrated(self, layout: KeystoreLayout) -> Manifest:
        """Version 2 of this manifest: missing grant digests read from the documents on disk."""
        enclaves = {}
        for path, record in self.enclaves.items():
            if record.grant_sha256 is None:
                record = replace(record, grant_sha256=_disk_digest(layout, path))
            enclaves[path] = record
        return replace(self, enclaves=enclaves, version=MANIFEST_VERSION)

    def to_bytes(self) -> bytes:
        """The manifest as written: indented, sorted JSON (version 2)."""
        document: dict[str, object] = {"version": MANIFEST_VERSION,
                                       "enclaves": {p: r.to_json() for p, r in sorted(self.enclaves.items())}}
        if self.created is not None:
            document["created"] = iso_utc(self.created)
        if self.policy is not None:
            document["policy"] = self.policy
        if self.single_ca is not None:
            document["single_ca"] = self.single_ca
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _time(value: object) -> _dt.datetime:
    parsed = _dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=_dt.timezone.utc)


def record_from_json(path: str, entry: object) -> EnclaveRecord:
    """One manifest entry from its JSON (also carried in host packages).

    :raises ValueError: not an object with serial, not_after and a known key_origin.
    :raises KeyError: serial or not_after missing.
    """
    if not isinstance(entry, dict):
        raise ValueError(f"enclaves.{path}: expected an object")
    origin = str(entry.get("key_origin", "keystore"))
    if origin not in KEY_ORIGINS:
        raise ValueError(f"enclaves.{path}.key_origin: expected one of {', '.join(KEY_ORIGINS)}")
    digest = entry.get("grant_sha256")
    return EnclaveRecord(serial=str(entry["serial"]), not_after=_time(entry["not_after"]),
                         grant_sha256=str(digest) if isinstance(digest, str) else None, key_origin=origin)


def parse_manifest(data: bytes, layout: KeystoreLayout) -> Manifest:
    """A manifest from its bytes (version 1 or 2).

    :raises KeystoreError: not JSON, a newer version, or malformed entries.
    """
    source = layout.manifest
    try:
        document = parse_json(data)
    except ValueError:
        raise KeystoreError(source, "expected JSON (our manifest)") from None
    if not isinstance(document, dict):
        raise KeystoreError(source, "expected a JSON object (our manifest)")
    version = document.get("version", 1)
    if version not in (1, MANIFEST_VERSION):
        raise KeystoreError(source, f"version: expected 1 or {MANIFEST_VERSION}, got {version!r} "
                                    "(made by a newer cobot_security?)")
    entries = document.get("enclaves") or {}
    try:
        if not isinstance(entries, dict):
            raise ValueError("enclaves: expected an object")
        records = {str(path): record_from_json(str(path), entry) for path, entry in entries.items()}
        created = _time(document["created"]) if document.get("created") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise KeystoreError(source, f"malformed manifest: {exc}") from None
    single = document.get("single_ca")
    return Manifest(created=created, policy=str(document["policy"]) if "policy" in document else None,
                    single_ca=single if isinstance(single, bool) else None, enclaves=records, version=int(version))


def read_manifest(layout: KeystoreLayout) -> Manifest:
    """The keystore's manifest; an empty one for a keystore made by another tool (none on disk).

    :raises KeystoreError: it exists but cannot be read or parsed.
    """
    try:
        data = layout.manifest.read_bytes()
    except FileNotFoundError:
        return Manifest(version=0)
    except OSError as exc:
        raise KeystoreError(layout.manifest, f"cannot read our manifest: {exc.strerror or exc}") from None
    return parse_manifest(data, layout)


def _disk_digest(layout: KeystoreLayout, path: str) -> str | None:
    document = layout.enclave_dir(path) / PERMISSIONS_XML
    try:
        return document_grant_digest(document.read_bytes(), document)
    except OSError:
        return None


def grant_changed(layout: KeystoreLayout, manifest: Manifest, policy: WorkcellPolicy, enclave: Enclave) -> bool:
    """Whether ``enclave``'s signed grant no longer is what ``policy`` compiles to.

    The one "changed?" rule for rotation and reconcile.  An enclave our manifest does not know
    (a keystore made by another tool) is never "changed": there is nothing we signed to compare.
    """
    record = manifest.enclaves.get(enclave.path)
    if record is None:
        return False
    recorded = record.grant_sha256 if record.grant_sha256 is not None else _disk_digest(layout, enclave.path)
    return recorded != grant_digest(policy, enclave)
