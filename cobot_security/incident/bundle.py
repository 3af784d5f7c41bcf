"""Evidence bundles: one incident's record, snapshots, audit chain and keystore manifest in a tar.gz.

Members (flat names)::

    incident.json  posture_before.json  posture_after.json  health.json   (those that exist)
    audit/audit.log      every line from the genesis record: the hash chain checks from "0"*64
    audit/audit.head     the MAC'd pointer to the last line (checkable with the audit key)
    audit/excerpt.json   the records of the incident's time window (copies of lines of audit.log)
    keystore/manifest.json  keystore/integrity.json  keystore/integrity.json.p7s  (those that exist)
    MANIFEST.json        version, incident id, creation time, signature kind, SHA-256 of every member
    MANIFEST.json.p7s    S/MIME signature by the permissions CA when its key could be loaded, else
    MANIFEST.json.hmac   HMAC-SHA256 of MANIFEST.json with the audit key (private/audit.key)

:func:`verify_bundle` checks the signature (against the keystore's permissions CA, or its audit
key), every member's hash, that nothing unlisted was added, and the audit hash chain; the result
names the first bad member.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import io
import json
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import CobotSecurityError, InputError, KeystoreError
from cobot_security.incident.incidents import INCIDENT_FILE, IncidentStore
from cobot_security.json_input import parse_json
from cobot_security.keystore import smime
from cobot_security.keystore.audit import GENESIS_PREV
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.store import Keystore

__all__ = ["BundleResult", "BundleVerification", "export_bundle", "verify_bundle"]

MANIFEST = "MANIFEST.json"
SMIME_SIG = MANIFEST + ".p7s"
HMAC_SIG = MANIFEST + ".hmac"
BUNDLE_VERSION = 1
#: Audit records this long before the incident opened are part of the excerpt (context).
EXCERPT_LEAD = _dt.timedelta(hours=1)
_EVIDENCE = ("posture_before.json", "posture_after.json", "health.json")


@dataclass(frozen=True)
class BundleResult:
    """What :func:`export_bundle` wrote."""

    path: Path
    members: tuple[str, ...]
    signature: str          #: "smime" (permissions CA) or "hmac-sha256" (audit key)
    missing: tuple[str, ...]


@dataclass(frozen=True)
class BundleVerification:
    """Outcome of :func:`verify_bundle`; ``first_bad`` names the member that failed."""

    ok: bool
    signature: str = ""
    first_bad: str | None = None
    problem: str = ""
    members: int = 0


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _audit_members(layout: KeystoreLayout, start: _dt.datetime, end: _dt.datetime) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    try:
        log = layout.audit_log.read_bytes() if layout.audit_log.is_file() else b""
        head = layout.audit_head.read_bytes() if layout.audit_head.is_file() else b""
    except OSError as exc:
        raise KeystoreError(exc.filename or layout.audit_log, f"cannot read the audit log: {exc.strerror}") from None
    if not log:
        return members
    complete = log if log.endswith(b"\n") else log[: log.rfind(b"\n") + 1]
    excerpt = []
    for line in complete.splitlines():
        try:
            record = parse_json(line)
            when = _dt.datetime.fromisoformat(str(record["time"]))
        except (ValueError, KeyError, TypeError):
            continue
        if start <= when <= end:
            excerpt.append(record)
    members["audit/audit.log"] = complete
    if head:
        members["audit/audit.head"] = head
    members["audit/excerpt.json"] = (json.dumps({"from": iso_utc(start), "to": iso_utc(end), "records": excerpt},
                                                indent=2, sort_keys=True) + "\n").encode()
    return members


def export_bundle(store: IncidentStore, incident_id: str, layout: KeystoreLayout, output: Path,
                  now: _dt.datetime, passphrase: bytes | None = None) -> BundleResult:
    """Write the evidence bundle of ``incident_id`` to ``output`` (written aside, then renamed).

    :raises InputError: unknown incident.
    :raises KeystoreError: the record, audit log or keys cannot be read, or ``output`` not written.
    """
    incident = store.get(incident_id)
    directory = store.incident_dir(incident_id)
    members: dict[str, bytes] = {INCIDENT_FILE: (directory / INCIDENT_FILE).read_bytes()}
    missing = []
    for name in _EVIDENCE:
        path = directory / name
        if path.is_file():
            members[name] = path.read_bytes()
        else:
            missing.append(name)
    opened = _dt.datetime.fromisoformat(incident.opened_at)
    end = _dt.datetime.fromisoformat(incident.closed_at) if incident.closed_at else now
    members.update(_audit_members(layout, opened - EXCERPT_LEAD, end))
    for name, path in (("keystore/manifest.json", layout.manifest),
                       ("keystore/integrity.json", layout.integrity_json),
                       ("keystore/integrity.json.p7s", layout.integrity_p7s)):
        if path.is_file():
            members[name] = path.read_bytes()
        else:
            missing.append(name)
    manifest_doc = {"version": BUNDLE_VERSION, "incident": incident_id, "created": iso_utc(now),
                    "members": {name: _sha256(data) for name, data in sorted(members.items())}}
    # the signature kind is part of what is signed, so a downgrade is detectable
    kind_name, signature = _sign_manifest(manifest_doc, layout, passphrase)
    manifest = _manifest_bytes(manifest_doc)
    members[MANIFEST] = manifest
    members[kind_name] = signature
    buffer = io.BytesIO()
    mtime = int(now.timestamp())
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(members[name]), mtime, 0o600
            tar.addfile(info, io.BytesIO(members[name]))
    try:
        atomic.write_bytes_atomic(Path(output), buffer.getvalue(), 0o600)
    except OSError as exc:
        raise KeystoreError(output, f"cannot write the bundle: {exc.strerror or exc}") from None
    return BundleResult(Path(output), tuple(sorted(members)),
                        "smime" if kind_name == SMIME_SIG else "hmac-sha256", tuple(missing))


def _manifest_bytes(doc: dict[str, object]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _sign_manifest(doc: dict[str, object], layout: KeystoreLayout,
                   passphrase: bytes | None) -> tuple[str, bytes]:
    try:
        permissions = Keystore.open(layout.root, passphrase).load_ca_keys().permissions
    except CobotSecurityError:
        permissions = None
    if permissions is not None:
        doc["signature"] = "smime"
        return SMIME_SIG, smime.sign_smime(_manifest_bytes(doc), permissions.cert, permissions.key)
    doc["signature"] = "hmac-sha256"
    try:
        key = layout.audit_key.read_bytes()
    except OSError as exc:
        raise KeystoreError(layout.audit_key, "cannot sign the bundle: neither the permissions CA key nor "
                                              f"the audit key is available ({exc.strerror})") from None
    return HMAC_SIG, (hmac.new(key, _manifest_bytes(doc), hashlib.sha256).hexdigest() + "\n").encode()


def _read_members(path: Path) -> dict[str, bytes] | BundleVerification:
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for info in tar:
                name = info.name
                if not info.isfile() or name.startswith("/") or ".." in name.split("/"):
                    return BundleVerification(False, first_bad=name, problem="not a plain file member")
                if name in members:
                    return BundleVerification(False, first_bad=name, problem="member appears twice")
                handle = tar.extractfile(info)
                members[name] = handle.read() if handle is not None else b""
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        # A corrupted gzip stream may surface as zlib.error, not OSError: still bad input, never a traceback.
        raise InputError(path, None, "a readable .tar.gz evidence bundle", f"{type(exc).__name__}: {exc}") from None
    return members


def _check_chain(log: bytes) -> str:
    prev = GENESIS_PREV
    for number, line in enumerate(log.splitlines(), start=1):
        try:
            record = parse_json(line)
        except ValueError:
            return f"line {number} is not JSON"
        if not isinstance(record, dict) or record.get("seq") != number or record.get("prev") != prev:
            return f"line {number} breaks the hash chain (seq/prev)"
        prev = hashlib.sha256(line).hexdigest()
    return ""


def verify_bundle(path: Path, layout: KeystoreLayout | None) -> BundleVerification:
    """Check a bundle written by :func:`export_bundle`; never raises for a bad bundle.

    ``layout`` supplies the trust: its ``public/permissions_ca.cert.pem`` for an S/MIME bundle, its
    audit key for an HMAC one.

    :raises InputError: ``path`` is not a readable tar.gz.
    """
    members = _read_members(Path(path))
    if isinstance(members, BundleVerification):
        return members
    raw = members.get(MANIFEST)
    if raw is None:
        return BundleVerification(False, first_bad=MANIFEST, problem="no manifest")
    try:
        doc = parse_json(raw)
        listed = dict(doc["members"])
        kind = str(doc["signature"])
        created = _dt.datetime.fromisoformat(str(doc["created"]))
    except (ValueError, KeyError, TypeError):
        return BundleVerification(False, first_bad=MANIFEST, problem="manifest is not the expected JSON")
    problem = _check_signature(members, raw, kind, created, layout)
    if problem:
        return BundleVerification(False, kind, MANIFEST, problem)
    for name in sorted(listed):
        if name not in members:
            return BundleVerification(False, kind, name, "listed in the manifest but absent")
        if _sha256(members[name]) != listed[name]:
            return BundleVerification(False, kind, name, "SHA-256 does not match the manifest")
    for name in sorted(members):
        if name not in listed and name not in (MANIFEST, SMIME_SIG, HMAC_SIG):
            return BundleVerification(False, kind, name, "not listed in the manifest")
    if "audit/audit.log" in members:
        chain = _check_chain(members["audit/audit.log"])
        if chain:
            return BundleVerification(False, kind, "audit/audit.log", chain)
        lines = {parse_json(line)["seq"]: parse_json(line) for line in members["audit/audit.log"].splitlines()}
        try:
            excerpt = parse_json(members.get("audit/excerpt.json", b'{"records": []}'))
            records = list(excerpt["records"])
        except (ValueError, KeyError, TypeError):
            return BundleVerification(False, kind, "audit/excerpt.json", "not the expected JSON")
        for record in records:
            if not isinstance(record, dict):
                return BundleVerification(False, kind, "audit/excerpt.json", "not the expected JSON")
            if lines.get(record.get("seq")) != record:
                return BundleVerification(False, kind, "audit/excerpt.json",
                                          f"record {record.get('seq')} differs from audit/audit.log")
    return BundleVerification(True, kind, None, "", len(listed))


def _check_signature(members: dict[str, bytes], manifest: bytes, kind: str, created: _dt.datetime,
                     layout: KeystoreLayout | None) -> str:
    if layout is None:
        return "no keystore given: the signature cannot be checked"
    if kind == "smime":
        p7s = members.get(SMIME_SIG)
        if p7s is None:
            return f"signature kind smime but no {SMIME_SIG}"
        try:
            signed = smime.verify_smime(p7s, layout.permissions_ca_cert, at=created, source=SMIME_SIG)
        except KeystoreError as exc:
            return exc.problem
        return "" if signed == manifest else "the signed manifest differs from MANIFEST.json"
    if kind == "hmac-sha256":
        tag = members.get(HMAC_SIG)
        if tag is None:
            return f"signature kind hmac-sha256 but no {HMAC_SIG}"
        try:
            key = layout.audit_key.read_bytes()
        except OSError as exc:
            return f"cannot read the audit key {layout.audit_key}: {exc.strerror}"
        expected = hmac.new(key, manifest, hashlib.sha256).hexdigest()
        return "" if hmac.compare_digest(tag.decode("ascii", "replace").strip(), expected) else "HMAC mismatch"
    return f"unknown signature kind {kind!r}"
