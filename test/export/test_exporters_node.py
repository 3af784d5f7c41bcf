"""attach_exporters on a plain rclpy node, driven the way the supervisor drives it.

Parameters are set through real rclpy parameter overrides; on_report feeds a real PostureReport
and the metrics are scraped over HTTP; on_alert / on_audit / on_incident reach a real rsyslogd.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import rclpy
from export_builders import audit_record, findings, report, transition
from rclpy.node import Node
from rclpy.parameter import Parameter
from rsyslog_daemon import Rsyslog, free_port
from test_metrics_scrape import scrape

from cobot_security.errors import InputError
from cobot_security.nodes.exporters import (
    ExportConfig,
    attach_exporters,
    declare_export_params,
)
from cobot_security.status import Level

pytestmark = pytest.mark.ros


@pytest.fixture
def context(domain_id: int) -> Iterator[rclpy.Context]:
    """A private rclpy context on its own domain, shut down afterwards."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    try:
        yield ctx
    finally:
        ctx.try_shutdown()


def _node(context: rclpy.Context, **params: object) -> Node:
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    return Node("supervisor", context=context, parameter_overrides=overrides)


def test_supervisor_like_flow(context: rclpy.Context, rsyslog: Rsyslog) -> None:
    port = free_port(socket.SOCK_STREAM)
    node = _node(context, syslog_target=f"udp://127.0.0.1:{rsyslog.udp_port}", metrics_port=port,
                 syslog_enterprise_id=99999)
    exporters = attach_exporters(node, declare_export_params(node))
    try:
        rep = report(cert_level=Level.ERROR, stale=1)
        current = findings(cert_level=Level.ERROR, stale=1)
        exporters.on_report(rep, current, None, 3)  # stale derived from reporter_liveness
        exporters.on_report(rep, current, None, 3)  # unchanged: no second posture event
        got = scrape(port)
        exporters.on_alert(transition(Level.ERROR), critical=True)
        exporters.on_audit(audit_record())
        exporters.on_incident("INC-9", "opened", Level.ERROR, "rogue node", {"enclave": "/cell/rogue"})
        assert exporters.syslog is not None and exporters.syslog.flush(10)
    finally:
        exporters.close()
        node.destroy_node()
    assert got[("cobot_posture_score", ())] == rep.score
    assert got[("cobot_control_level", (("control", "cert_lifetime"), ("priority", "critical")))] == Level.ERROR
    assert got[("cobot_stale_reporters", ())] == 1
    assert got[("cobot_open_incidents", ())] == 3
    rows = rsyslog.wait_for(lambda r: r["appname"] == "cobot_security", count=4)
    assert sorted(r["msgid"] for r in rows) == ["alert", "audit", "incident", "posture"]
    alert = next(r for r in rows if r["msgid"] == "alert")
    assert alert["sd"].startswith('[cobot@99999 control="cert_lifetime"')
    assert alert["severity"] == "2"
    assert exporters.errors == 0


def test_defaults_switch_everything_off(context: rclpy.Context) -> None:
    node = _node(context)
    try:
        config = declare_export_params(node)
        exporters = attach_exporters(node, config)
        exporters.on_report(report(), findings(), 0, 0)
        exporters.on_alert(transition())
        exporters.close()
    finally:
        node.destroy_node()
    assert config == ExportConfig()
    assert (exporters.syslog, exporters.metrics, exporters.server, exporters.errors) == (None, None, None, 0)


@pytest.mark.parametrize(("params", "field"), [
    ({"syslog_target": "http://x"}, "syslog_target"),
    ({"syslog_facility": "local9"}, "syslog_facility"),
    ({"metrics_port": 70000}, "metrics_port"),
    ({"syslog_enterprise_id": 0}, "syslog_enterprise_id"),
])
def test_bad_parameters_are_input_errors(context: rclpy.Context, params: dict[str, object], field: str) -> None:
    node = _node(context, **params)
    try:
        with pytest.raises(InputError, match=field):
            declare_export_params(node)
    finally:
        node.destroy_node()


def test_a_broken_hook_is_logged_not_raised(context: rclpy.Context) -> None:
    node = _node(context)
    try:
        exporters = attach_exporters(node, ExportConfig(metrics_port=free_port(socket.SOCK_STREAM)))
        exporters.on_report(report(), [object()], None, 0)  # type: ignore[list-item]
        exporters.close()
    finally:
        node.destroy_node()
    assert exporters.errors == 1
