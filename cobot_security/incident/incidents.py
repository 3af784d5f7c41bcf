"""Incident records and their store: one directory per incident under ``incident_dir``.

``<incident_dir>/<id>/incident.json`` is the record (written aside, fsynced, renamed); the same
directory holds the evidence snapshots (``posture_before.json``, ``posture_after.json``,
``health.json``).  Every read-modify-write holds ``<incident_dir>/lock`` (flock), so the
supervisor and ``cobot-security incident close`` never lose each other's updates, and the
dedupe key (trigger + subject) is checked under the same lock: a restarted supervisor finds the
open incident on disk instead of opening a duplicate.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.json_input import parse_json

__all__ = ["INCIDENT_FILE", "Incident", "IncidentStore", "TimelineEntry", "close_incident",
           "new_incident_id"]

INCIDENT_FILE = "incident.json"
RECORD_VERSION = 1
_ID_RE = re.compile(r"(inc|drill)-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to an incident: a step's outcome, a note, the close."""

    time: str
    event: str          #: opened, action, manual, closed, note, drill
    result: str         #: done, failed, requested, assigned, rate_limited, dry_run, gave_up, ''
    detail: str = ""
    step: int | None = None
    action: str = ""

    def to_json(self) -> dict[str, object]:
        """JSON object of the entry."""
        return {"time": self.time, "event": self.event, "result": self.result, "detail": self.detail,
                "step": self.step, "action": self.action}

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> TimelineEntry:
        """Inverse of :meth:`to_json`."""
        step = obj.get("step")
        return cls(str(obj["time"]), str(obj["event"]), str(obj.get("result", "")), str(obj.get("detail", "")),
                   int(step) if isinstance(step, int) else None, str(obj.get("action", "")))


def _timestamp(value: object, *, empty: bool = False) -> str:
    """``value`` when it is an ISO 8601 time with its UTC offset (or ``""`` where ``empty``).

    :raises ValueError: anything else (a record's times are used in date arithmetic later).
    """
    if empty and value == "":
        return ""
    try:
        aware = isinstance(value, str) and _dt.datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        aware = False
    if not aware:
        raise ValueError(f"expected an ISO 8601 time with its UTC offset, got {value!r:.40}")
    return str(value)


@dataclass(frozen=True)
class Incident:
    """An incident: what triggered it, how bad, whom it concerns, and everything done since."""

    id: str
    key: str                            #: dedupe key: ``<trigger>:<subject>``
    playbook: str
    trigger: str
    severity: str
    subjects: tuple[str, ...]
    opened_at: str
    reason: str
    status: str = "open"               #: open | closed
    closed_at: str = ""
    close_note: str = ""
    drill: bool = False
    evidence: tuple[str, ...] = ()      #: status names involved
    timeline: tuple[TimelineEntry, ...] = field(default=())

    @property
    def is_open(self) -> bool:
        """True until closed."""
        return self.status == "open"

    def with_entry(self, entry: TimelineEntry) -> Incident:
        """A copy with ``entry`` appended to the timeline."""
        return replace(self, timeline=self.timeline + (entry,))

    def to_json(self) -> dict[str, object]:
        """The record as written to ``incident.json``."""
        return {"version": RECORD_VERSION, "id": self.id, "key": self.key, "playbook": self.playbook,
                "trigger": self.trigger, "severity": self.severity, "subjects": list(self.subjects),
                "opened_at": self.opened_at, "reason": self.reason, "status": self.status,
                "closed_at": self.closed_at, "close_note": self.close_note, "drill": self.drill,
                "evidence": list(self.evidence), "timeline": [e.to_json() for e in self.timeline]}

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> Incident:
        """Inverse of :meth:`to_json`.

        :raises KeyError, TypeError, ValueError: on a malformed record (the store wraps them).
        """
        return cls(
            id=str(obj["id"]), key=str(obj["key"]), playbook=str(obj["playbook"]), trigger=str(obj["trigger"]),
            severity=str(obj["severity"]), subjects=tuple(str(s) for s in obj["subjects"]),  # type: ignore[attr-defined]
            opened_at=_timestamp(obj["opened_at"]), reason=str(obj.get("reason", "")), status=str(obj["status"]),
            closed_at=_timestamp(obj.get("closed_at", ""), empty=True), close_note=str(obj.get("close_note", "")),
            drill=bool(obj.get("drill", False)),
            evidence=tuple(str(s) for s in obj.get("evidence", ())),  # type: ignore[attr-defined]
            timeline=tuple(TimelineEntry.from_json(e) for e in obj.get("timeline", ())),  # type: ignore[attr-defined]
        )


def new_incident_id(key: str, now: _dt.datetime, drill: bool = False) -> str:
    """``inc-20261129T120000Z-<8 hex of the key>`` (``drill-…`` for drills)."""
    stamp = now.astimezone(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{'drill' if drill else 'inc'}-{stamp}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


class IncidentStore:
    """The incidents under one directory (created 0700 on first write).

    ``max_evidence_bytes`` (None: no limit) bounds each evidence file: a document too large even
    as compact JSON is replaced by a note saying how large it was, so hostile input cannot fill
    the disk.
    """

    def __init__(self, directory: Path, max_evidence_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_evidence_bytes = max_evidence_bytes

    def _lock(self) -> atomic.KeystoreLock:
        self._ensure_dir()
        return atomic.KeystoreLock(self.directory / "lock", timeout_s=10.0)

    def _ensure_dir(self) -> None:
        try:
            if not self.directory.is_dir():
                self.directory.parent.mkdir(parents=True, exist_ok=True)
                atomic.make_private_dir(self.directory)
        except OSError as exc:
            raise KeystoreError(self.directory,
                                f"cannot create the incident directory: {exc.strerror or exc}") from None

    def incident_dir(self, incident_id: str) -> Path:
        """Directory of one incident (its record and evidence).

        :raises InputError: ``incident_id`` is not an incident id (no path tricks).
        """
        if not _ID_RE.fullmatch(incident_id):
            raise InputError(None, "incident id", "an id like inc-20261129T120000Z-1a2b3c4d", repr(incident_id))
        return self.directory / incident_id

    def _read(self, path: Path) -> Incident:
        try:
            return Incident.from_json(parse_json(path.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeystoreError(path, f"expected an incident record: {type(exc).__name__}: {exc}") from None

    def _write(self, incident: Incident) -> None:
        directory = self.incident_dir(incident.id)
        data = (json.dumps(incident.to_json(), indent=2, sort_keys=True) + "\n").encode("utf-8")
        try:
            atomic.make_private_dir(directory)
            atomic.write_bytes_atomic(directory / INCIDENT_FILE, data, 0o600)
        except OSError as exc:
            raise KeystoreError(directory, f"cannot write the incident record: {exc.strerror or exc}") from None

    def list(self) -> list[Incident]:
        """Every incident, oldest first (directories without a record are skipped).

        :raises KeystoreError: a record is unreadable.
        """
        if not self.directory.is_dir():
            return []
        found = []
        for entry in sorted(self.directory.iterdir()):
            if _ID_RE.fullmatch(entry.name) and (entry / INCIDENT_FILE).is_file():
                found.append(self._read(entry / INCIDENT_FILE))
        return sorted(found, key=lambda i: (i.opened_at, i.id))

    def get(self, incident_id: str) -> Incident:
        """The incident with ``incident_id``.

        :raises InputError: no such incident (exit 2).
        """
        path = self.incident_dir(incident_id) / INCIDENT_FILE
        if not path.is_file():
            raise InputError(None, "incident id", f"an incident under {self.directory}", repr(incident_id))
        return self._read(path)

    def open_incident(self, incident: Incident) -> Incident | None:
        """Persist a new open incident unless one with the same key is open; None when deduped."""
        with self._lock():
            if any(i.is_open and i.key == incident.key for i in self.list()):
                return None
            self._write(incident)
        return incident

    def save(self, incident: Incident) -> None:
        """Write a new incident that needs no dedupe (drills)."""
        with self._lock():
            self._write(incident)

    def update(self, incident_id: str, change: Callable[[Incident], Incident]) -> Incident:
        """Apply ``change`` to the stored record under the lock and write the result."""
        with self._lock():
            updated = change(self.get(incident_id))
            self._write(updated)
        return updated

    def write_evidence(self, incident_id: str, name: str, document: object) -> Path:
        """Write one JSON evidence file (``posture_before.json`` …) beside the record."""
        if not re.fullmatch(r"[a-z_]+\.json", name):
            raise InputError(None, "evidence name", "a name like posture_after.json", repr(name))
        directory = self.incident_dir(incident_id)
        data = (json.dumps(document, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
        limit = self.max_evidence_bytes
        if limit is not None and len(data) > limit:
            data = (json.dumps(document, sort_keys=True, separators=(",", ":"), default=str) + "\n").encode("utf-8")
        if limit is not None and len(data) > limit:
            data = (json.dumps({"omitted": True, "bytes": len(data), "max_evidence_bytes": limit,
                                "note": f"{name} was larger than the evidence limit"}, indent=2, sort_keys=True)
                    + "\n").encode("utf-8")
        try:
            atomic.make_private_dir(directory)
            atomic.write_bytes_atomic(directory / name, data, 0o600)
        except OSError as exc:
            raise KeystoreError(directory, f"cannot write evidence {name}: {exc.strerror or exc}") from None
        return directory / name


def close_incident(store: IncidentStore, incident_id: str, note: str, now: _dt.datetime,
                   by: str = "operator") -> Incident:
    """Close an incident with a note (an operator's command or an auto-close).

    :raises InputError: no such incident, or it is already closed.
    """
    def change(incident: Incident) -> Incident:
        if not incident.is_open:
            raise InputError(None, "incident id", "an open incident", f"{incident_id} closed at {incident.closed_at}")
        entry = TimelineEntry(iso_utc(now), "closed", "done", f"closed by {by}: {note}" if note else f"closed by {by}")
        return replace(incident, status="closed", closed_at=iso_utc(now), close_note=note).with_entry(entry)

    return store.update(incident_id, change)

