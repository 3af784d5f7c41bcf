"""What the ``ros2 doctor`` plugins show: the supervisor's posture report as doctor errors and rows.

Pure formatting; the plugins themselves (service call, ros2doctor base classes) are the adapter
:mod:`cobot_security.nodes.doctor_plugin`.  The check fails (one error per failing control) when
the overall level is ERROR or STALE or no report came within :data:`SERVICE_TIMEOUT_S`.
"""

from __future__ import annotations

from cobot_security.json_input import parse_json
from cobot_security.posture.evaluate import PostureReport
from cobot_security.posture.report import report_from_dict
from cobot_security.status import Level

__all__ = [
    "CATEGORY",
    "REPORT_SERVICE",
    "SERVICE_TIMEOUT_S",
    "parse_report_message",
    "posture_problems",
    "posture_report_items",
]

CATEGORY = "cobot_security"
REPORT_SERVICE = "/supervisor/get_report"
#: ros2 doctor runs every check in turn; a silent supervisor must not hang it.
SERVICE_TIMEOUT_S = 3.0


def parse_report_message(message: str) -> PostureReport:
    """The supervisor's get_report JSON (``Trigger.Response.message``) as a PostureReport.

    :raises InputError: when the JSON is not a posture report.
    """
    try:
        data = parse_json(message)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return report_from_dict({})  # raises the InputError naming what was expected
    return report_from_dict(data)


def posture_problems(report: PostureReport | None, error: str = "") -> tuple[list[str], list[str]]:
    """(errors, warnings) to show: the check fails on an ERROR/STALE overall level or no report."""
    if report is None:
        return [f"no posture from {REPORT_SERVICE}: {error or 'no answer'}"], []
    errors: list[str] = []
    warnings: list[str] = []
    for r in report.results:
        line = f"{r.control_id} ({r.priority.value}) {r.level.name}: {r.reason}"
        if r.level in (Level.ERROR, Level.STALE):
            errors.append(line)
        elif r.level == Level.WARN:
            warnings.append(line)
    if report.level in (Level.ERROR, Level.STALE) and not errors:
        # e.g. an empty catalog: worst() of nothing is ERROR, and that must fail the check too.
        errors.append(f"posture {report.level.name} (score {report.score}/100)")
    return errors, warnings


def posture_report_items(report: PostureReport | None, error: str = "") -> list[tuple[str, str]]:
    """(item, info) rows of the ros2doctor report: score, level, time, then one row per control."""
    if report is None:
        return [("posture", f"unavailable: {error or 'no answer from ' + REPORT_SERVICE}")]
    items = [("score", f"{report.score}/100"), ("level", report.level.name),
             ("evaluated at", report.evaluated_at.isoformat())]
    items += [(r.control_id, f"{r.level.name} ({r.priority.value})") for r in report.results]
    return items
