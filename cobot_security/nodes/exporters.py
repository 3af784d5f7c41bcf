"""Wire the exporters into a node: parameters, one attach call, and hooks the supervisor calls.

The supervisor adds (see docs/export.md)::

    from cobot_security.nodes.exporters import attach_exporters, declare_export_params
    self.exporters = attach_exporters(self, declare_export_params(self))      # in __init__
    self.exporters.on_report(report, self.tracker.current(now), None, open_incidents)  # each tick
    self.exporters.on_alert(transition, is_critical_failure(transition, self.catalog))  # per alert

and ``on_audit(record)`` / ``on_incident(...)`` where audit records and incidents are produced.
Every hook catches its own errors (logged, throttled): export must never stop supervision.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node

from cobot_security.checks import REPORTER_LIVENESS
from cobot_security.clock import utc_now
from cobot_security.errors import InputError
from cobot_security.export.metrics import (
    MetricsGauges,
    MetricsServer,
    create_metrics,
    serve_metrics,
    update_metrics,
)
from cobot_security.export.syslog import (
    DEFAULT_ENTERPRISE,
    DEFAULT_FACILITY,
    FACILITIES,
    SyslogSender,
    alert_event,
    audit_event,
    incident_event,
    parse_syslog_target,
    posture_event,
)
from cobot_security.keystore.audit import AuditRecord
from cobot_security.posture.alerts import Transition
from cobot_security.posture.evaluate import PostureReport
from cobot_security.status import Finding, Level

__all__ = ["ExportConfig", "Exporters", "attach_exporters", "count_stale", "declare_export_params"]


@dataclass(frozen=True)
class ExportConfig:
    """Export parameters: an empty ``syslog_target`` and ``metrics_port`` 0 switch export off."""

    syslog_target: str = ""
    syslog_facility: str = DEFAULT_FACILITY
    syslog_enterprise_id: int = DEFAULT_ENTERPRISE
    metrics_port: int = 0
    metrics_addr: str = "127.0.0.1"


def _declare(node: Node, name: str, default: object, description: str) -> Any:
    try:
        return node.declare_parameter(
            name, default, ParameterDescriptor(description=description, read_only=True)).value
    except ParameterException as exc:
        raise InputError(None, name, f"a value like {default!r}", str(exc).split(". Reason:")[0]) from exc


def declare_export_params(node: Node) -> ExportConfig:
    """Declare syslog_target, syslog_facility, syslog_enterprise_id, metrics_port, metrics_addr.

    :raises InputError: for a malformed target, an unknown facility or a port out of range.
    """
    target = str(_declare(node, "syslog_target", "",
                          "RFC 5424 export: udp://host:port, tcp://host:port or unix:///dev/log; empty = off"))
    facility = str(_declare(node, "syslog_facility", DEFAULT_FACILITY, "Syslog facility (local4 by default)"))
    enterprise = int(_declare(node, "syslog_enterprise_id", DEFAULT_ENTERPRISE,
                              "IANA enterprise number of the SD-ID cobot@<number>"))
    port = int(_declare(node, "metrics_port", 0, "Prometheus /metrics port; 0 = off"))
    addr = str(_declare(node, "metrics_addr", "127.0.0.1", "Address the metrics endpoint binds to"))
    config = ExportConfig(target, facility, enterprise, port, addr)
    _validate(config)
    return config


def _validate(config: ExportConfig) -> None:
    parse_syslog_target(config.syslog_target)
    if config.syslog_facility not in FACILITIES:
        raise InputError(None, "syslog_facility", "one of " + ", ".join(FACILITIES), repr(config.syslog_facility))
    if config.syslog_enterprise_id < 1:
        raise InputError(None, "syslog_enterprise_id", "a positive IANA enterprise number",
                         str(config.syslog_enterprise_id))
    if not 0 <= config.metrics_port <= 65535:
        raise InputError(None, "metrics_port", "0 (off) or a port in 1..65535", str(config.metrics_port))


def count_stale(findings: Sequence[Finding]) -> int:
    """Reporters whose reporter_liveness finding is not OK (STALE, or ERROR once long silent)."""
    return sum(1 for f in findings if f.check == REPORTER_LIVENESS and f.level != Level.OK)


class Exporters:
    """The node's syslog sender and metrics endpoint (either may be off) behind four hooks."""

    def __init__(self, node: Node, config: ExportConfig, sender: SyslogSender | None,
                 gauges: MetricsGauges | None, server: MetricsServer | None) -> None:
        """Hold what :func:`attach_exporters` started."""
        self._node = node
        self.config = config
        self.syslog = sender
        self.metrics = gauges
        self.server = server
        self.errors = 0
        self._last_posture: tuple[Level, int] | None = None

    def _failed(self, what: str, exc: Exception) -> None:
        self.errors += 1
        self._node.get_logger().warning(f"export of {what} failed: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=5.0)

    def on_report(self, report: PostureReport | None, findings: Sequence[Finding],
                  stale: int | None = None, open_incidents: int = 0) -> None:
        """Update the gauges each evaluation; send a ``posture`` event when level or score changed.

        ``findings`` are the supervisor's current ones (tracker.current(now)); ``stale`` None
        counts the non-OK reporter_liveness findings.
        """
        try:
            stale_count = count_stale(findings) if stale is None else stale
            if self.metrics is not None:
                update_metrics(self.metrics, report, findings, stale_count, open_incidents)
            if self.syslog is not None and report is not None:
                key = (report.level, report.score)
                if key != self._last_posture:
                    self._last_posture = key
                    self.syslog.send(posture_event(report), report.evaluated_at)
        except Exception as exc:  # noqa: BLE001 - export never stops supervision
            self._failed("the posture", exc)

    def on_alert(self, transition: Transition, critical: bool = False) -> None:
        """Send one ``alert`` event per confirmed control transition (crit for a Critical failure)."""
        try:
            if self.syslog is not None:
                self.syslog.send(alert_event(transition, critical), utc_now())
        except Exception as exc:  # noqa: BLE001
            self._failed("an alert", exc)

    def on_audit(self, record: AuditRecord) -> None:
        """Send one keystore audit record as an ``audit`` event."""
        try:
            if self.syslog is not None:
                self.syslog.send(audit_event(record), utc_now())
        except Exception as exc:  # noqa: BLE001
            self._failed("an audit record", exc)

    def on_incident(self, incident_id: str, action: str, level: Level, message: str,
                    details: Mapping[str, object] | None = None) -> None:
        """Send an ``incident`` event (action: opened, action, closed...; details: trigger, enclave...)."""
        try:
            if self.syslog is not None:
                self.syslog.send(incident_event(incident_id, action, level, message, details), utc_now())
        except Exception as exc:  # noqa: BLE001
            self._failed("an incident", exc)

    def close(self) -> None:
        """Flush syslog (bounded), stop the metrics endpoint."""
        if self.syslog is not None:
            self.syslog.close()
        if self.server is not None:
            self.server.close()


def attach_exporters(node: Node, config: ExportConfig) -> Exporters:
    """Start what ``config`` enables (syslog sender thread, metrics endpoint) for ``node``.

    :raises InputError: for a bad target, facility or enterprise id, or a metrics port in use.
    """
    _validate(config)
    target = parse_syslog_target(config.syslog_target)
    sender = None
    if target is not None:
        sender = SyslogSender(target, socket.gethostname(), facility=config.syslog_facility,
                              enterprise=config.syslog_enterprise_id, procid=str(os.getpid()))
    gauges = server = None
    if config.metrics_port:
        gauges = create_metrics()
        server = serve_metrics(gauges, config.metrics_port, config.metrics_addr)
    where = []
    if sender is not None:
        where.append(f"syslog {target}")
    if server is not None:
        where.append(f"metrics http://{server.addr}:{server.port}/metrics")
    if where:
        node.get_logger().info("exporting to " + ", ".join(where))
    return Exporters(node, config, sender, gauges, server)
