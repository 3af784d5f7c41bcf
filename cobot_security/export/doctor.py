"""``ros2 doctor`` plugins that show the cell's posture, from the supervisor's get_report service.

Entry points (setup.py): ``ros2doctor.checks: CobotPostureCheck`` and ``ros2doctor.report:
CobotPostureReport``.  The check fails (one ros2doctor error per failing control) when the overall
level is ERROR or STALE or the supervisor does not answer within :data:`SERVICE_TIMEOUT_S`; the
report prints the score and every control's level.

The formatting is pure (:func:`posture_problems`, :func:`posture_report_items`); only
:func:`fetch_report` touches ROS, and it imports rclpy lazily.  The module imports without
ros2doctor: the base classes then fall back to plain stand-ins with the same methods.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cobot_security.posture.evaluate import PostureReport
from cobot_security.posture.report import report_from_dict
from cobot_security.status import Level

try:  # ros2doctor is optional: the plugins are only loaded by `ros2 doctor` itself.
    from ros2doctor.api import DoctorCheck, DoctorReport, Report, Result
except ImportError:  # pragma: no cover - exercised where ros2doctor is absent
    class DoctorCheck:  # type: ignore[no-redef]
        """Stand-in for ros2doctor.api.DoctorCheck."""

    class DoctorReport:  # type: ignore[no-redef]
        """Stand-in for ros2doctor.api.DoctorReport."""

    class Report:  # type: ignore[no-redef]
        """Stand-in for ros2doctor.api.Report: a name and (item, info) pairs."""

        def __init__(self, name: str) -> None:
            self.name = name
            self.items: list[tuple[str, str]] = []

        def add_to_report(self, item_name: str, item_info: str) -> None:
            self.items.append((item_name, item_info))

    class Result:  # type: ignore[no-redef]
        """Stand-in for ros2doctor.api.Result: error and warning counters."""

        def __init__(self) -> None:
            self.error = 0
            self.warning = 0

        def add_error(self) -> None:
            self.error += 1

        def add_warning(self) -> None:
            self.warning += 1

__all__ = [
    "CATEGORY",
    "CobotPostureCheck",
    "CobotPostureReport",
    "SERVICE_TIMEOUT_S",
    "fetch_report",
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
        data = json.loads(message)
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


def fetch_report(timeout_s: float = SERVICE_TIMEOUT_S) -> tuple[PostureReport | None, str]:
    """Call ``/supervisor/get_report`` once in a private rclpy context: (report, error text).

    Never raises: a missing service, a timeout or a malformed answer is returned as the error.
    """
    try:
        import rclpy
        import rclpy.executors
        from rclpy.context import Context
        from std_srvs.srv import Trigger
    except ImportError as exc:
        return None, f"rclpy unavailable: {exc}"
    context = Context()
    try:
        rclpy.init(context=context)
        node = rclpy.create_node("cobot_security_doctor", context=context,
                                 start_parameter_services=False, enable_rosout=False)
        try:
            client: Any = node.create_client(Trigger, REPORT_SERVICE)  # std_srvs ships no type hints
            if not client.wait_for_service(timeout_sec=timeout_s):
                return None, f"service {REPORT_SERVICE} not available within {timeout_s}s"
            future = client.call_async(Trigger.Request())
            executor = rclpy.executors.SingleThreadedExecutor(context=context)
            executor.add_node(node)
            executor.spin_until_future_complete(future, timeout_sec=timeout_s)
            response = future.result() if future.done() else None
            if response is None:
                return None, f"no answer from {REPORT_SERVICE} within {timeout_s}s"
            return parse_report_message(response.message), ""
        finally:
            node.destroy_node()
    except Exception as exc:  # noqa: BLE001 - a doctor plugin reports, it never crashes ros2 doctor
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


def _emit(kind: str, message: str) -> None:
    """Print through ros2doctor's formatter when present (it colours and counts nothing itself)."""
    try:
        from ros2doctor.api.format import doctor_error, doctor_warn
    except ImportError:
        import warnings
        warnings.warn(message, stacklevel=3)
        return
    (doctor_error if kind == "error" else doctor_warn)(message)


#: Replaced in tests to feed a report without ROS.
_FETCH: Callable[[], tuple[PostureReport | None, str]] = fetch_report


class CobotPostureCheck(DoctorCheck):
    """ros2doctor check: fails when the cell's posture is ERROR/STALE or unavailable."""

    def category(self) -> str:
        """The ros2doctor category of this check."""
        return CATEGORY

    def check(self) -> Any:
        """One ros2doctor error per failing control, one warning per WARN control."""
        result = Result()
        report, error = _FETCH()
        errors, warnings = posture_problems(report, error)
        for message in errors:
            _emit("error", message)
            result.add_error()
        for message in warnings:
            _emit("warn", message)
            result.add_warning()
        return result


class CobotPostureReport(DoctorReport):
    """ros2doctor report: score, overall level and each control's level."""

    def category(self) -> str:
        """The ros2doctor category of this report."""
        return CATEGORY

    def report(self) -> Any:
        """A Report named ``COBOT SECURITY POSTURE``."""
        report, error = _FETCH()
        out = Report("COBOT SECURITY POSTURE")
        for item, info in posture_report_items(report, error):
            out.add_to_report(item, info)
        return out
