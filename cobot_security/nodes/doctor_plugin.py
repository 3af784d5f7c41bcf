"""``ros2 doctor`` plugins that show the cell's posture, from the supervisor's get_report service.

Entry points (setup.py): ``ros2doctor.checks: CobotPostureCheck`` and ``ros2doctor.report:
CobotPostureReport``.  The check fails (one ros2doctor error per failing control) when the overall
level is ERROR or STALE or the supervisor does not answer within
:data:`~cobot_security.export.doctor.SERVICE_TIMEOUT_S`; the report prints the score and every
control's level.  The formatting is pure (:mod:`cobot_security.export.doctor`); this adapter does
the service call and the ros2doctor plumbing.  Without ros2doctor installed the base classes fall
back to plain stand-ins with the same methods.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import rclpy
import rclpy.executors
from rclpy.context import Context
from std_srvs.srv import Trigger

from cobot_security.export.doctor import (
    CATEGORY,
    REPORT_SERVICE,
    SERVICE_TIMEOUT_S,
    parse_report_message,
    posture_problems,
    posture_report_items,
)
from cobot_security.posture.evaluate import PostureReport

try:  # ros2doctor is optional: the plugins are only loaded by `ros2 doctor` itself.
    from ros2doctor.api import DoctorCheck, DoctorReport, Report, Result
    from ros2doctor.api.format import doctor_error, doctor_warn
except ImportError:  # pragma: no cover - exercised where ros2doctor is absent
    doctor_error = doctor_warn = None

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

__all__ = ["CobotPostureCheck", "CobotPostureReport", "fetch_report"]


def fetch_report(timeout_s: float = SERVICE_TIMEOUT_S) -> tuple[PostureReport | None, str]:
    """Call ``/supervisor/get_report`` once in a private rclpy context: (report, error text).

    Never raises: a missing service, a timeout or a malformed answer is returned as the error.
    """
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
    if doctor_error is None or doctor_warn is None:
        warnings.warn(message, stacklevel=3)
        return
    (doctor_error if kind == "error" else doctor_warn)(message)


#: Replaced in tests to feed a report without a supervisor.
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
        errors, warns = posture_problems(report, error)
        for message in errors:
            _emit("error", message)
            result.add_error()
        for message in warns:
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
