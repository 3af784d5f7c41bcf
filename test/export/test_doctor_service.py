"""The doctor plugins against a real /supervisor/get_report service (a plain rclpy node)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import rclpy
from export_builders import report
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger

from cobot_security.export import doctor
from cobot_security.nodes import doctor_plugin
from cobot_security.posture.report import render_report
from cobot_security.status import Level

pytestmark = pytest.mark.ros


@pytest.fixture
def served_report(monkeypatch: pytest.MonkeyPatch, domain_id: int) -> Iterator[dict[str, object]]:
    """Serve get_report (the supervisor's JSON) from a node spinning in a thread; body is mutable."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    body: dict[str, object] = json.loads(render_report(report(cert_level=Level.ERROR), "json"))
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("supervisor", context=ctx)

    def answer(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success = True
        response.message = json.dumps(body)
        return response

    node.create_service(Trigger, doctor.REPORT_SERVICE, answer)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield body
    finally:
        executor.shutdown()
        node.destroy_node()
        ctx.try_shutdown()
        thread.join(5)


def test_fetch_report_from_the_service(served_report: dict[str, object]) -> None:
    rep, error = doctor_plugin.fetch_report(timeout_s=10)
    assert error == ""
    assert rep == report(cert_level=Level.ERROR)
    errors, _ = doctor.posture_problems(rep)
    assert errors and errors[0].startswith("cert_lifetime")


def test_fetch_report_times_out_without_a_supervisor(monkeypatch: pytest.MonkeyPatch, domain_id: int) -> None:
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rep, error = doctor_plugin.fetch_report(timeout_s=0.5)
    assert rep is None
    assert "not available" in error


def test_ros2doctor_loads_our_entry_points(served_report: dict[str, object]) -> None:
    pytest.importorskip("ros2doctor", reason="ros2doctor (ros2cli) is not installable from PyPI here; "
                                             "this runs on a ROS 2 install")
    from importlib.metadata import entry_points

    from ros2doctor.api import DoctorCheck, DoctorReport

    checks = {ep.name: ep for ep in entry_points(group="ros2doctor.checks")}
    reports = {ep.name: ep for ep in entry_points(group="ros2doctor.report")}
    check_cls = checks["CobotPostureCheck"].load()
    report_cls = reports["CobotPostureReport"].load()
    assert issubclass(check_cls, DoctorCheck) and issubclass(report_cls, DoctorReport)
    assert check_cls().check().error >= 1
    assert ("cert_lifetime", "ERROR (critical)") in report_cls().report().items


def test_plugin_classes_with_a_fed_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor_plugin, "_FETCH", lambda: (report(cert_level=Level.ERROR), ""))
    emitted: list[tuple[str, str]] = []
    monkeypatch.setattr(doctor_plugin, "_emit", lambda kind, message: emitted.append((kind, message)))
    result = doctor_plugin.CobotPostureCheck().check()
    assert (result.error, result.warning) == (1, 0)
    assert emitted[0][0] == "error" and emitted[0][1].startswith("cert_lifetime (critical) ERROR")
    out = doctor_plugin.CobotPostureReport().report()
    assert out.name == "COBOT SECURITY POSTURE"
    assert ("cert_lifetime", "ERROR (critical)") in out.items
    check, report_plugin = doctor_plugin.CobotPostureCheck(), doctor_plugin.CobotPostureReport()
    assert check.category() == report_plugin.category() == "cobot_security"
