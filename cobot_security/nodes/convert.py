"""Findings and control results <-> diagnostic_msgs, at the ROS boundary only.

Outgoing conversions trust our own values.  Incoming statuses become plain
:class:`~cobot_security.health.envelope.StatusRecord` values (:func:`status_record`), which the
core validates and verifies; nothing here decides whether a status is accepted.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import SupportsInt, cast

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from cobot_security.health.envelope import REPORTER_KEY, StatusRecord, record_to_finding
from cobot_security.posture.alerts import Transition
from cobot_security.posture.evaluate import ControlResult, PostureReport
from cobot_security.status import STATUS_PREFIX, Finding, Level

#: Name of the overall posture status.
POSTURE_NAME = STATUS_PREFIX + "/posture"


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


def finding_record(finding: Finding, host: str, reporter: str) -> StatusRecord:
    """The status of ``finding`` as plain values, with ``reporter`` (the node) as the last key."""
    values = tuple((k, v) for k, v in finding.values if k != REPORTER_KEY) + ((REPORTER_KEY, reporter),)
    return StatusRecord(int(finding.level), finding.name, finding.message, host, values)


def record_to_status(record: StatusRecord) -> DiagnosticStatus:
    """The DiagnosticStatus of a record."""
    return DiagnosticStatus(level=bytes([record.level]), name=record.name, message=record.message,
                            hardware_id=record.hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in record.values])


def finding_to_status(finding: Finding, host: str, reporter: str) -> DiagnosticStatus:
    """A DiagnosticStatus named ``cobot_security/<check>/<subject>`` with ``reporter`` added."""
    return record_to_status(finding_record(finding, host, reporter))


def records_to_array(records: Iterable[StatusRecord], now: _dt.datetime) -> DiagnosticArray:
    """A stamped DiagnosticArray of ``records`` (in the order given)."""
    msg = DiagnosticArray()
    msg.header.stamp = to_stamp(now)
    msg.status = [record_to_status(r) for r in records]
    return msg


def status_record(status: DiagnosticStatus) -> StatusRecord:
    """An incoming status as plain values; a level that is not one byte becomes -1 (invalid)."""
    raw = status.level
    if isinstance(raw, (bytes, bytearray)):
        level = raw[0] if len(raw) == 1 else -1
    else:
        level = int(raw) if isinstance(raw, int) and 0 <= raw <= 255 else -1
    return StatusRecord(level, status.name, status.message, status.hardware_id,
                        tuple((kv.key, kv.value) for kv in status.values))


def status_to_finding(status: DiagnosticStatus) -> Finding | None:
    """The Finding an incoming status carries, or None (see ``health.envelope.record_to_finding``)."""
    try:
        return record_to_finding(status_record(status))
    except Exception:  # noqa: BLE001 - hostile input must never take the caller down
        return None


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
