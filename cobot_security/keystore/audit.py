"""Tamper-evident audit log of every mutating keystore operation (JSON lines, hash-chained, MAC'd).

Each line of ``.cobot_security/audit.log`` is the canonical JSON of one record::

    {"details": {...}, "event": "issue", "mac": "<hex>", "prev": "<hex>", "seq": 2,
     "subject": "/cell/arm", "time": "2026-01-01T00:00:00+00:00"}

``prev`` is the SHA-256 of the previous line (``"0" * 64`` for the first), so deleting, inserting
or reordering a line breaks the chain; ``mac`` is HMAC-SHA256 over the canonical JSON of all the
other fields with the 32-byte key ``private/audit.key`` (created 0600 on first use), so an edited
or forged record is detected by whoever holds the key.  ``.cobot_security/audit.head`` holds the
MAC'd sequence number and hash of the last line, so that a deleted tail is detected too (an
attacker who kept an old copy of both the log and its head can still roll back both together).

Events used across the project: ``init``, ``issue``, ``rotate``, ``revoke``, ``rollback``,
``crl_refresh``, ``ca_renew``, ``ca_rollover``.  Records must never carry key material or
passphrases: details hold names, serials, fingerprints and reasons only.

Concurrency: :func:`append_audit` reads the tail, then appends; the caller must hold the keystore
lock (:class:`cobot_security.atomic.KeystoreLock`) so that two writers cannot interleave.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.json_input import parse_json
from cobot_security.keystore.layout import KeystoreLayout

#: Events the project writes (others following the same lower_snake pattern are accepted).
AUDIT_EVENTS: tuple[str, ...] = (
    "init", "issue", "rotate", "revoke", "rollback", "crl_refresh", "ca_renew", "ca_rollover", "recover",
    "integrity_rebased", "integrity_reread",
)
GENESIS_PREV = "0" * 64
AUDIT_KEY_BYTES = 32
_FIELDS = frozenset({"seq", "time", "event", "subject", "details", "prev", "mac"})
_EVENT_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_LOG_MODE = 0o600


@dataclass(frozen=True)
class AuditRecord:
    """One audit record as written (``mac`` and ``prev`` in hex)."""

    seq: int
    time: str
    event: str
    subject: str
    details: Mapping[str, str] = field(default_factory=dict)
    prev: str = GENESIS_PREV
    mac: str = ""

    def to_json(self) -> dict[str, object]:
        """The record as a JSON object (for ``audit-log show --json``)."""
        return {"seq": self.seq, "time": self.time, "event": self.event, "subject": self.subject,
                "details": dict(self.details), "prev": self.prev, "mac": self.mac}


@dataclass(frozen=True)
class AuditVerification:
    """Outcome of :func:`verify_audit_log`; ``first_bad`` is a 1-based line number."""

    ok: bool
    records: int
    first_bad: int | None = None
    problem: str = ""


def _canonical(obj: Mapping[str, object]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _mac(key: bytes, fields: Mapping[str, object]) -> str:
    body = {k: v for k, v in fields.items() if k != "mac"}
    return hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _load_key(layout: KeystoreLayout, create: bool) -> bytes | None:
    """Read the audit key; with ``create`` make it (0600, O_EXCL) when absent AND the log is empty.

    A missing key beside an existing log is an error, never a silent new key: a new key would make
    every earlier record unverifiable.
    """
    path = layout.audit_key
    if not os.path.lexists(path):
        if not create:
            return None
        if _read_log(layout.audit_log):
            raise KeystoreError(path, "audit key missing: the log cannot be extended (its records are MACed "
                                      "with the lost key); see docs/rotation.md, 'Audit log'")
        try:
            if not layout.private_dir.is_dir():
                atomic.make_private_dir(layout.private_dir)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, secrets.token_bytes(AUDIT_KEY_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise KeystoreError(exc.filename or path, f"cannot create the audit key: {exc.strerror or exc}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            key = handle.read(AUDIT_KEY_BYTES + 1)
    except OSError as exc:
        raise KeystoreError(path, f"cannot read the audit key (a regular file, not a link): "
                                  f"{exc.strerror or exc}") from None
    if len(key) != AUDIT_KEY_BYTES:
        raise KeystoreError(path, f"expected a {AUDIT_KEY_BYTES}-byte audit key, got {len(key)} bytes")
    return key


def _read_log(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise KeystoreError(path, f"cannot read the audit log: {exc.strerror or exc}") from None


def _write_head(layout: KeystoreLayout, key: bytes, seq: int, last: str, durable: bool) -> None:
    head: dict[str, object] = {"seq": seq, "last": last}
    head["mac"] = _mac(key, head)
    atomic.write_bytes_atomic(layout.audit_head, _canonical(head) + b"\n", _LOG_MODE, durable=durable)


@dataclass(frozen=True)
class AuditEvent:
    """One record to append: what happened (``event``) to what (``subject``), with ``details``."""

    event: str
    subject: str
    details: Mapping[str, str] = field(default_factory=dict)


def _clean_details(event: AuditEvent) -> dict[str, str]:
    if not _EVENT_RE.fullmatch(event.event):
        raise InputError(None, "event", "a lower_snake_case audit event name", repr(event.event))
    clean: dict[str, str] = {}
    for name, value in event.details.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InputError(None, f"details.{name}", "string keys and values", type(value).__name__)
        if "-----BEGIN" in value or "PRIVATE KEY" in value:
            raise InputError(None, f"details.{name}", "no key material in audit records", "PEM data")
        clean[name] = value
    return clean


def append_audit(layout: KeystoreLayout, events: Sequence[AuditEvent], now: _dt.datetime, *,
                 durable: bool = True) -> list[AuditRecord]:
    """Append ``events`` to the audit log in one write (O_APPEND) and move the MAC'd head to the last.

    The caller must hold the keystore lock.  ``details`` are names, serials and reasons; a value
    that looks like PEM (key material) is refused.  With ``durable=False`` nothing is fsynced: the
    caller's transaction syncs the head with the rest of the batch; the records are always fsynced
    once, before the head moves to them.

    :raises InputError: a malformed event name, non-string details, naive ``now`` or PEM in details.
    :raises KeystoreError: the log's last line is incomplete (run ``audit-log verify``), the audit
        key is missing beside an existing log, or the disk refuses.
    """
    if now.tzinfo is None:
        raise InputError(None, "now", "a timezone-aware time", "a naive datetime")
    cleaned = [(event, _clean_details(event)) for event in events]
    if not cleaned:
        return []
    path = layout.audit_log
    key = _load_key(layout, create=True)
    assert key is not None
    data = _read_log(path)
    if data and not data.endswith(b"\n"):
        raise KeystoreError(path, "the audit log ends with an incomplete line; refusing to append "
                                  "(run cobot-security audit-log verify)")
    lines = data.splitlines()
    seq, prev = len(lines), (_line_hash(lines[-1]) if lines else GENESIS_PREV)
    records: list[AuditRecord] = []
    payload = bytearray()
    for event, clean in cleaned:
        seq += 1
        fields: dict[str, object] = {"seq": seq, "time": iso_utc(now), "event": event.event,
                                     "subject": event.subject, "details": clean, "prev": prev}
        fields["mac"] = _mac(key, fields)
        line = _canonical(fields)
        payload += line + b"\n"
        records.append(AuditRecord(seq=seq, time=str(fields["time"]), event=event.event, subject=event.subject,
                                   details=clean, prev=prev, mac=str(fields["mac"])))
        prev = _line_hash(line)
    try:
        if not layout.meta_dir.is_dir():
            atomic.make_private_dir(layout.meta_dir)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, _LOG_MODE)
        try:
            view = memoryview(bytes(payload))
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)  # the records are durable before the head names them (one fsync per batch)
        finally:
            os.close(fd)
        _write_head(layout, key, seq, prev, durable)
    except OSError as exc:
        raise KeystoreError(exc.filename or path, f"cannot append to the audit log: {exc.strerror or exc}") from None
    return records


def _parse(line: bytes) -> dict[str, object] | str:
    """The record's fields, or a description of why the line is not a record."""
    try:
        obj = parse_json(line)
    except ValueError:
        return "not valid JSON"
    if not isinstance(obj, dict):
        return "not a JSON object"
    keys = set(obj)
    if keys != _FIELDS:
        extra, missing = sorted(keys - _FIELDS), sorted(_FIELDS - keys)
        return "unexpected fields " + ", ".join(extra) if extra else "missing fields " + ", ".join(missing)
    if not isinstance(obj["seq"], int) or not isinstance(obj["details"], dict):
        return "malformed seq or details"
    return obj


def read_audit_log(layout: KeystoreLayout) -> list[AuditRecord]:
    """Every parseable record of the log in file order (no verification: use :func:`verify_audit_log`).

    :raises KeystoreError: the log cannot be read.
    """
    records: list[AuditRecord] = []
    for line in _read_log(layout.audit_log).splitlines():
        obj = _parse(line)
        if isinstance(obj, str):
            continue
        records.append(AuditRecord(
            seq=int(obj["seq"]),  # type: ignore[call-overload]
            time=str(obj["time"]), event=str(obj["event"]), subject=str(obj["subject"]),
            details={str(k): str(v) for k, v in obj["details"].items()},  # type: ignore[attr-defined]
            prev=str(obj["prev"]), mac=str(obj["mac"]),
        ))
    return records


def verify_audit_log(layout: KeystoreLayout) -> AuditVerification:
    """Check every line's MAC, sequence number and hash link, and the head, in order.

    Detects an edited field (MAC), a forged record (MAC), a deleted, inserted or reordered line
    (seq / prev), a truncated last line (no newline) and a deleted tail (head).  Stops at the
    first bad line.

    :raises KeystoreError: the log or the key cannot be read.
    """
    key = _load_key(layout, create=False)
    if key is None:
        return AuditVerification(False, 0, None, f"no audit key at {layout.audit_key}: MACs cannot be checked")
    if not os.path.lexists(layout.audit_log):
        return AuditVerification(False, 0, None, f"no audit log at {layout.audit_log}")
    data = _read_log(layout.audit_log)
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    prev = GENESIS_PREV
    for number, line in enumerate(complete, start=1):
        obj = _parse(line)
        if isinstance(obj, str):
            return AuditVerification(False, number - 1, number, obj)
        if not hmac.compare_digest(str(obj["mac"]), _mac(key, obj)):
            return AuditVerification(False, number - 1, number,
                                     "MAC mismatch: the record was edited or not written by this keystore")
        if obj["seq"] != number:
            return AuditVerification(False, number - 1, number,
                                     f"sequence number {obj['seq']}, expected {number}: "
                                     "a line was deleted, inserted or reordered")
        if obj["prev"] != prev:
            return AuditVerification(False, number - 1, number,
                                     f"prev hash does not match line {number - 1}: "
                                     "a line was deleted, inserted, reordered or re-encoded")
        prev = _line_hash(line)
    count = len(complete)
    if tail:
        return AuditVerification(False, count, count + 1, "truncated last line (no newline): incomplete record")
    return _verify_head(layout, key, complete)


def _verify_head(layout: KeystoreLayout, key: bytes, lines: list[bytes]) -> AuditVerification:
    count = len(lines)
    try:
        raw = layout.audit_head.read_bytes()
    except FileNotFoundError:
        return AuditVerification(False, count, None, f"no audit head at {layout.audit_head}")
    except OSError as exc:
        raise KeystoreError(layout.audit_head, f"cannot read the audit head: {exc.strerror or exc}") from None
    try:
        head = parse_json(raw)
    except ValueError:
        head = None
    if not isinstance(head, dict) or set(head) != {"seq", "last", "mac"} or not isinstance(head["seq"], int):
        return AuditVerification(False, count, None, "audit head is malformed")
    if not hmac.compare_digest(str(head["mac"]), _mac(key, head)):
        return AuditVerification(False, count, None, "audit head MAC mismatch: the head was edited")
    seq = head["seq"]
    if seq > count:
        return AuditVerification(False, count, count + 1,
                                 f"the head names record {seq} but the log ends at record {count}: "
                                 "the last lines were deleted")
    # The head may lag the log by the records of a batch appended just before a crash: records
    # after the head still carry valid MACs and chain links (checked above), which only the key
    # holder can produce; a deleted tail shows as a head beyond the log.
    if (seq >= 1 and head["last"] != _line_hash(lines[seq - 1])) or (
            seq == 0 and head["last"] != GENESIS_PREV):
        return AuditVerification(False, count, max(seq, 1), "the head does not match the log: "
                                 "records were replaced")
    return AuditVerification(True, count, None, "")
