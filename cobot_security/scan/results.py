"""Scan and check results stored with their time, so that health can publish them and judge their age.

Each scan is one JSON file ``<keystore>/.cobot_security/scans/<kind>-<sanitised target>.json``
(written aside then renamed), replacing the previous scan of the same target.  Records hold the
findings only (levels, messages, key/values), never key material.  The same reader understands the
network check record (``network_check.json``) written by ``cobot-security network check``.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.json_input import parse_json
from cobot_security.status import Finding, finding_from_json, finding_to_json

__all__ = [
    "RECORD_VERSION",
    "ScanRecord",
    "finding_from_json",
    "finding_to_json",
    "read_scan_record",
    "read_scan_results",
    "result_path",
    "sanitise_target",
    "store_scan_result",
]

RECORD_VERSION = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_KIND = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class ScanRecord:
    """One stored scan: what kind, which target, when it ran, and the findings it produced."""

    kind: str
    target: str
    scanned_at: _dt.datetime
    findings: tuple[Finding, ...]


def sanitise_target(target: str) -> str:
    """``opc.tcp://10.0.0.5:4840/`` → ``opc.tcp_10.0.0.5_4840``: file-name safe, no dot-only names."""
    cleaned = _UNSAFE.sub("_", target).strip("_.")
    return cleaned or "target"


def result_path(directory: Path, kind: str, target: str) -> Path:
    """Where the scan of ``kind`` against ``target`` is stored."""
    return Path(directory) / f"{kind}-{sanitise_target(target)}.json"


def store_scan_result(
    directory: Path, kind: str, target: str, findings: Sequence[Finding], now: _dt.datetime
) -> Path:
    """Replace the stored result of ``kind`` scans of ``target`` (atomic write, 0644, dir 0700).

    :raises KeystoreError: when the directory or file cannot be written.
    """
    if not _KIND.fullmatch(kind):
        raise ValueError(f"scan kind must be snake_case, got {kind!r}")
    document = {
        "version": RECORD_VERSION,
        "kind": kind,
        "target": target,
        "scanned_at": iso_utc(now),
        "findings": [finding_to_json(finding) for finding in findings],
    }
    path = result_path(directory, kind, target)
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    try:
        directory = Path(directory)
        if not directory.parent.exists():
            atomic.make_private_dir(directory.parent)
        atomic.make_private_dir(directory)
        atomic.write_bytes_atomic(path, data, 0o644)
    except OSError as exc:
        raise KeystoreError(exc.filename or directory, f"cannot store the scan result: {exc.strerror or exc}") from exc
    return path


def _time(value: object, source: str, field: str) -> _dt.datetime:
    try:
        parsed = _dt.datetime.fromisoformat(str(value)) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise InputError(source, field, "an ISO 8601 time", repr(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=_dt.timezone.utc)


def read_scan_record(path: Path, default_kind: str = "", time_key: str = "scanned_at") -> ScanRecord:
    """Read one stored record; ``default_kind``/``time_key`` adapt it to the network check record.

    :raises InputError: when the file is unreadable, not JSON or not a record.
    """
    source = str(path)
    try:
        document = parse_json(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(source, None, "a readable result file", exc.strerror or type(exc).__name__) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(source, None, "a JSON result record", type(exc).__name__) from None
    if not isinstance(document, dict):
        raise InputError(source, None, "a JSON object", type(document).__name__)
    kind = document.get("kind", default_kind)
    if not isinstance(kind, str) or not kind:
        raise InputError(source, "kind", "a scan kind", repr(kind))
    target = document.get("target", "")
    scanned_at = _time(document.get(time_key), source, time_key)
    items = document.get("findings")
    if not isinstance(items, list):
        raise InputError(source, "findings", "a list of findings", type(items).__name__)
    findings = tuple(finding_from_json(item, source, f"findings[{i}]") for i, item in enumerate(items))
    return ScanRecord(kind, str(target), scanned_at, findings)


def read_scan_results(directory: Path) -> list[tuple[Path, ScanRecord | InputError]]:
    """Every ``*.json`` record in ``directory`` (sorted), each read or the error reading it gave.

    A missing directory is no records.  Errors are returned, not raised, so that one corrupt file
    is reported as such while the other records are still published.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    results: list[tuple[Path, ScanRecord | InputError]] = []
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            results.append((path, read_scan_record(path)))
        except InputError as exc:
            results.append((path, exc))
    return results
