"""Findings and control results <-> diagnostic_msgs, at the ROS boundary only.

Outgoing conversions trust our own values.  The incoming one, :func:`status_to_finding`, reads
what any participant on the domain may have published, so it validates everything and returns
``None`` for a status it will not accept (the caller counts those) instead of raising.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from typing import SupportsInt, cast

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from cobot_security.posture.alerts import Transition
from cobot_security.posture.evaluate import ControlResult, PostureReport
from cobot_security.status import STATUS_PREFIX, Finding, Level, parse_status_name

#: Reserved key naming the publishing reporter (node or helper) inside its host.
REPORTER_KEY = "reporter"
#: Longest accepted string field of an incoming status (bytes of UTF-8).
MAX_FIELD_BYTES = 4096
#: Most key/values accepted on one incoming status.
MAX_VALUES = 256
#: Name of the overall posture status.
POSTURE_NAME = STATUS_PREFIX + "/posture"

_CHECK_RE = re.compile(r"[a-z][a-z0-9_]*")
_KEY_RE = re.compile(r"[a-z][a-z0-9_]*")


def level_to_byte(level: Level) -> bytes:
    """The one-byte ``DiagnosticStatus.level`` of ``level``."""
    return bytes([int(level)])


def byte_to_level(raw: bytes | int) -> Level | None:
    """The Level of a ``DiagnosticStatus.level`` value; None for anything but 0-3."""
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) != 1:
            return None
        raw = raw[0]
    try:
        return Level(int(raw))
    except (TypeError, ValueError):
        return None


def to_stamp(when: _dt.datetime) -> Time:
    """A builtin_interfaces/Time for an aware datetime."""
    ns = int(when.timestamp() * 1_000_000_000)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def finding_to_status(finding: Finding, host: str, reporter: str) -> DiagnosticStatus:
    """A DiagnosticStatus named ``cobot_security/<check>/<subject>`` with ``reporter`` added."""
    values = [KeyValue(key=k, value=v) for k, v in finding.values if k != REPORTER_KEY]
    values.append(KeyValue(key=REPORTER_KEY, value=reporter))
    return DiagnosticStatus(
        level=level_to_byte(finding.level),
        name=finding.name,
        message=finding.message,
        hardware_id=host,
        values=values,
    )


def findings_to_array(
    findings: Iterable[Finding], host: str, reporter: str, now: _dt.datetime
) -> DiagnosticArray:
    """A stamped DiagnosticArray of ``findings`` (in the order given)."""
    msg = DiagnosticArray()
    msg.header.stamp = to_stamp(now)
    msg.status = [finding_to_status(f, host, reporter) for f in findings]
    return msg


def _fits(text: object) -> bool:
    return isinstance(text, str) and len(text.encode("utf-8", "surrogatepass")) <= MAX_FIELD_BYTES


def status_to_finding(status: DiagnosticStatus) -> Finding | None:
    """The Finding an incoming status carries, or None if it is not a valid status of ours.

    Rejected: an unknown level byte, a name outside ``cobot_security/<check>/<subject>``, a
    field longer than 4 KiB, more than 256 key/values, keys that are not snake_case.  The
    ``reporter`` key is dropped from the values (see :func:`status_reporter`).
    """
    try:
        level = byte_to_level(status.level)
        if level is None:
            return None
        for text in (status.name, status.message, status.hardware_id):
            if not _fits(text):
                return None
        parsed = parse_status_name(status.name)
        if parsed is None:
            return None
        check, subject = parsed
        if not _CHECK_RE.fullmatch(check) or "\x00" in subject:
            return None
        if len(status.values) > MAX_VALUES:
            return None
        values = []
        for kv in status.values:
            if not (_fits(kv.key) and _fits(kv.value)) or not _KEY_RE.fullmatch(kv.key):
                return None
            if kv.key != REPORTER_KEY:
                values.append((kv.key, kv.value))
        return Finding(check=check, subject=subject, level=level, message=status.message, values=tuple(values))
    except Exception:  # noqa: BLE001 - hostile input must never take the caller down
        return None


def status_reporter(status: DiagnosticStatus) -> str:
    """The reporter identity of a (validated) status: ``<hardware_id>/<reporter key>``."""
    reporter = ""
    for kv in status.values:
        if kv.key == REPORTER_KEY:
            reporter = kv.value
            break
    host = status.hardware_id or "unknown-host"
    if not reporter:
        return host
    return host + (reporter if reporter.startswith("/") else "/" + reporter)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Finding):
        return f"{value.name}={value.level.name}"
    if isinstance(value, Iterable):
        return "; ".join(_text(v) for v in value)
    return str(value)


def _level(value: object) -> Level:
    return value if isinstance(value, Level) else Level(int(cast("str | SupportsInt", value)))


def result_to_status(result: ControlResult, host: str) -> DiagnosticStatus:
    """A ControlResult as ``cobot_security/posture/<control_id>`` with control/references/evidence."""
    values = [
        KeyValue(key="control", value=result.control_id),
        KeyValue(key="title", value=result.title),
        KeyValue(key="priority", value=result.priority.value),
        KeyValue(key="references", value=_text(result.references)),
        KeyValue(key="evidence", value=_text(result.evidence)),
    ]
    return DiagnosticStatus(
        level=level_to_byte(_level(result.level)),
        name=f"{POSTURE_NAME}/{result.control_id}",
        message=result.reason,
        hardware_id=host,
        values=values,
    )


def overall_status(level: Level, score: int, host: str, message: str | None = None) -> DiagnosticStatus:
    """The overall ``cobot_security/posture`` status with key ``score``."""
    return DiagnosticStatus(
        level=level_to_byte(level),
        name=POSTURE_NAME,
        message=message if message is not None else f"posture score {score}/100",
        hardware_id=host,
        values=[KeyValue(key="score", value=str(int(score)))],
    )


def report_to_array(report: PostureReport, host: str, now: _dt.datetime) -> DiagnosticArray:
    """One status per control result, then the overall status."""
    msg = DiagnosticArray()
    msg.header.stamp = to_stamp(now)
    msg.status = [result_to_status(r, host) for r in report.results]
    msg.status.append(overall_status(_level(report.level), report.score, host))
    return msg


def transition_to_status(transition: Transition, host: str) -> DiagnosticStatus:
    """An alert: the control's status after the transition, with ``previous``/``current`` keys."""
    status = result_to_status(transition.result, host)
    previous = transition.previous
    status.values.append(KeyValue(key="previous", value=_level(previous).name if previous is not None else "NONE"))
    status.values.append(KeyValue(key="current", value=_level(transition.current).name))
    return status
