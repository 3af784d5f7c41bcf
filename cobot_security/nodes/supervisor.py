"""supervisor node: health statuses in, posture verdicts, alerts and response hooks out.

``/cobot_security/health`` statuses are validated (:func:`status_to_finding`), hostile ones are
counted, and the rest feed a :class:`ReporterTracker` keyed by ``<hardware_id>/<reporter>``.  Every
period_s the posture is evaluated against the controls catalog and attestations and published on
``/cobot_security/posture``; control transitions that held for ``confirm_count`` evaluations go to
``/cobot_security/alerts``, and a Critical control failing fires the response hooks once.
The incident response plan (``incident_plan``) adds its ``incident_plan`` finding to every
evaluation and drives incidents (``cobot_security.incident``): triggers open one incident each,
persisted under ``incident_dir``; due actions (safety-stop request, Trigger calls, evidence
snapshots) run from the timer without blocking and their outcomes go to the timeline.
No callback raises: errors are logged, counted and reported.
"""

from __future__ import annotations

import datetime as _dt
import json
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.client import Client
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from std_msgs.msg import String
from std_srvs.srv import Trigger

from cobot_security.clock import iso_utc, utc_now
from cobot_security.incident.engine import DueAction, IncidentEngine
from cobot_security.incident.incidents import Incident, IncidentStore
from cobot_security.incident.plan import IncidentPlan, check_plan_file, plan_findings
from cobot_security.nodes.convert import (
    level_to_byte,
    overall_status,
    report_to_array,
    status_reporter,
    status_to_finding,
    to_stamp,
    transition_to_status,
)
from cobot_security.nodes.exporters import attach_exporters, declare_export_params
from cobot_security.nodes.health_reporter import run_node
from cobot_security.nodes.params import SupervisorParams, declare_supervisor
from cobot_security.posture.alerts import (
    Transition,
    TransitionFilter,
    is_critical_failure,
)
from cobot_security.posture.attestations import Attestation, load_attestations
from cobot_security.posture.catalog import ControlsCatalog, load_controls
from cobot_security.posture.evaluate import PostureReport, evaluate_posture
from cobot_security.posture.freshness import ReporterTracker
from cobot_security.posture.report import render_report
from cobot_security.status import Finding, Level, finding_to_json

HEALTH_TOPIC = "/cobot_security/health"
POSTURE_TOPIC = "/cobot_security/posture"
ALERTS_TOPIC = "/cobot_security/alerts"
DIAGNOSTICS_TOPIC = "/diagnostics"
REPORT_SERVICE = "/supervisor/get_report"
#: How long an incident action waits for its Trigger service to appear before one failed attempt.
SERVICE_WAIT_S = 10.0
#: Name of the supervisor's own input-validation status (on /diagnostics).
MALFORMED_STATUS = "cobot_security/malformed_messages/supervisor"
#: QoS of the response topic: reliable and latched, so that a safety system that (re)joins after the
#: failure still receives the stop request (each payload carries its time; depth 10).
RESPONSE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: QoS of /cobot_security/alerts: transitions are events that happen once, so they are latched
#: (last 100) for subscribers that join late; volatile subscribers still match.
ALERTS_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)


class SupervisorNode(Node):
    """Health in → ReporterTracker → evaluate_posture → posture, alerts, hooks, get_report."""

    def __init__(self, node_name: str = "supervisor", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.params: SupervisorParams = declare_supervisor(self)
        self.host = socket.gethostname()
        common = self.params.common
        self.tracker = ReporterTracker(stale_after_s=common.stale_after_s, error_after_s=self.params.error_after_s)
        self.transitions = TransitionFilter(confirm_count=self.params.confirm_count)
        self.malformed_messages = 0
        self.statuses_received = 0
        self.callback_errors = 0
        self.hooks_fired = 0
        self.load_errors: list[str] = []
        self.catalog: ControlsCatalog | None = None
        self.attestations: tuple[Attestation, ...] = ()
        self.report: PostureReport | None = None
        self._reporters: set[str] = set()
        self._pending_calls = 0  # Trigger calls owed to a response service not yet available
        self._load_inputs(common.controls, common.attestations)
        self.incident_plan: IncidentPlan | None = None
        self.incidents: IncidentEngine | None = None
        self.incident_errors = 0
        self._plan_error: list[Finding] = []
        self._last_findings: list[Finding] = []
        self._previous_posture: dict | None = None
        self._stop_pubs: dict[str, object] = {}
        self._action_clients: dict[str, object] = {}
        self._waiting_since: dict[tuple[str, int], _dt.datetime] = {}
        self._load_plan()
        # Syslog / Prometheus exports (off unless syslog_target / metrics_port are set).
        self.exporters = attach_exporters(self, declare_export_params(self))

        self._posture_pub = self.create_publisher(DiagnosticArray, POSTURE_TOPIC, 10)
        self._alerts_pub = self.create_publisher(DiagnosticArray, ALERTS_TOPIC, ALERTS_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._response_pub = (
            self.create_publisher(String, self.params.response_topic, RESPONSE_QOS)
            if self.params.response_topic else None
        )
        self._response_client: Client[Any, Any] | None = (
            self.create_client(Trigger, self.params.response_service) if self.params.response_service else None
        )
        self.create_subscription(DiagnosticArray, HEALTH_TOPIC, self._on_health, 100)
        self.create_service(Trigger, REPORT_SERVICE, self._on_get_report)
        self._timer = self.create_timer(common.period_s, self._tick)
        self.get_logger().info(
            f"supervising {HEALTH_TOPIC} with {common.controls} and {common.attestations} every {common.period_s}s")

    # -- inputs -------------------------------------------------------------------------------
    def _load_inputs(self, controls: Path, attestations: Path) -> None:
        try:
            self.catalog = load_controls(controls)
        except Exception as exc:  # noqa: BLE001 - published as an ERROR posture, never a crash
            self.load_errors.append(f"controls: {exc}")
            self.get_logger().error(f"cannot load the controls catalog: {exc}")
        try:
            self.attestations = tuple(load_attestations(attestations))
        except Exception as exc:  # noqa: BLE001 - no attestations: those controls fail closed
            self.attestations = ()
            self.load_errors.append(f"attestations: {exc}")
            self.get_logger().error(f"cannot load the attestations (controls needing them fail): {exc}")

    def _load_plan(self) -> None:
        """Load the incident plan; an invalid plan is an ERROR incident_plan finding, not a crash."""
        path = self.params.incident_plan
        plan, findings = check_plan_file(path, utc_now(), self.attestations)
        if plan is None:
            self._plan_error = findings
            self.get_logger().error(f"incident response plan not loaded: {findings[0].message}")
            return
        self.incident_plan = plan
        self.incidents = IncidentEngine(plan, IncidentStore(self.params.incident_dir))
        self.get_logger().info(f"incident plan {path}: {len(plan.playbooks)} playbooks; incidents in "
                               f"{self.params.incident_dir}")

    def _plan_findings(self, now: _dt.datetime) -> list[Finding]:
        if self.incident_plan is None:
            return list(self._plan_error)
        return plan_findings(self.incident_plan, now, self.attestations)

    def _on_health(self, msg: DiagnosticArray) -> None:
        try:
            now = utc_now()
            by_reporter: dict[str, list[Finding]] = {}
            self.statuses_received += len(msg.status)
            for status in msg.status:
                finding = status_to_finding(status)
                if finding is None:
                    self.malformed_messages += 1
                    continue
                by_reporter.setdefault(status_reporter(status), []).append(finding)
            for reporter, findings in by_reporter.items():
                self.tracker.observe(reporter, findings, now)
                self._reporters.add(reporter)
        except Exception as exc:  # noqa: BLE001 - hostile input must never stop the supervisor
            self.malformed_messages += 1
            self.callback_errors += 1
            self.get_logger().warning(f"dropped a health message: {type(exc).__name__}: {exc}",
                                      throttle_duration_sec=5.0)

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self) -> PostureReport | None:
        """Evaluate the posture now (None when the catalog could not be loaded)."""
        if self.catalog is None:
            return None
        now = utc_now()
        findings = self.tracker.current(now) + self._plan_findings(now)
        self._last_findings = findings
        return evaluate_posture(self.catalog, findings, self.attestations, now)

    def _tick(self) -> None:
        now = utc_now()
        try:
            report = self.evaluate()
        except Exception as exc:  # noqa: BLE001 - an evaluation bug is an ERROR posture
            self.callback_errors += 1
            self.get_logger().error(f"posture evaluation failed: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=5.0)
            report = None
            reason = f"posture evaluation failed: {type(exc).__name__}: {exc}"
        else:
            reason = "controls catalog not loaded: " + "; ".join(self.load_errors)
        if not self.context.ok():
            return  # shutting down
        try:
            self._call_pending()
            if report is None:
                msg = DiagnosticArray()
                msg.header.stamp = to_stamp(now)
                msg.status = [overall_status(Level.ERROR, 0, self.host, reason)]
                self._posture_pub.publish(msg)
            else:
                self.report = report
                self._posture_pub.publish(report_to_array(report, self.host, now))
                self._alert(report, now)
                self._run_incidents(report, now)
            self.exporters.on_report(report, self._last_findings, None, self._open_incident_count())
            self._publish_own_health(now)
        except Exception as exc:  # noqa: BLE001
            self.callback_errors += 1
            self.get_logger().error(f"publishing the posture failed: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=5.0)

    # -- incidents ----------------------------------------------------------------------------
    def _run_incidents(self, report: PostureReport, now: _dt.datetime) -> None:
        """Open/close incidents for this evaluation and start their due actions (never blocks)."""
        if self.incidents is None:
            return
        try:
            store = self.incidents.store
            posture = json.loads(render_report(report, "json"))
            update = self.incidents.evaluate(report.results, self._last_findings, now)
            for incident in update.opened:
                self.get_logger().error(f"incident {incident.id} opened: {incident.trigger} {incident.severity}: "
                                        f"{incident.reason}")
                self.exporters.on_incident(incident.id, "opened", Level.ERROR, incident.reason,
                                           {"trigger": incident.trigger, "severity": incident.severity,
                                            "subjects": ",".join(incident.subjects)})
                store.write_evidence(incident.id, "posture_before.json", self._previous_posture or posture)
                store.write_evidence(incident.id, "health.json", self._health_doc(incident, now))
            for incident in update.closed:
                self.get_logger().info(f"incident {incident.id} closed: trigger cleared")
                self.exporters.on_incident(incident.id, "closed", Level.OK, "trigger cleared",
                                           {"trigger": incident.trigger})
                store.write_evidence(incident.id, "posture_after.json", posture)
            for due in update.due:
                self._execute(due, posture, now)
            self._previous_posture = posture
        except Exception as exc:  # noqa: BLE001 - the incident engine must never stop the posture
            self.incident_errors += 1
            self.get_logger().error(f"incident handling failed: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=5.0)

    def _open_incident_count(self) -> int:
        """Open incidents for the metrics (0 when incident handling is off or unreadable)."""
        if self.incidents is None:
            return 0
        try:
            return sum(1 for incident in self.incidents.store.list() if incident.status == "open")
        except Exception:  # noqa: BLE001 - a metric must not break the posture
            return 0

    def destroy_node(self) -> None:
        """Flush the exporters before the node goes."""
        self.exporters.close()
        super().destroy_node()

    def _health_doc(self, incident: Incident, now: _dt.datetime) -> dict:
        involved = set(incident.evidence)
        return {"time": iso_utc(now), "incident": incident.id,
                "involved": [finding_to_json(f) for f in self._last_findings if f.name in involved],
                "all": [finding_to_json(f) for f in self._last_findings]}

    def _execute(self, due: DueAction, posture: dict, now: _dt.datetime) -> None:
        assert self.incidents is not None
        engine = self.incidents
        if due.action == "publish_stop":
            pub = self._stop_pubs.get(due.target)
            if pub is None:
                pub = self._stop_pubs[due.target] = self.create_publisher(String, due.target, RESPONSE_QOS)
            incident = engine.store.get(due.incident_id)
            payload = json.dumps({"event": "incident_safety_stop", "incident": incident.id,
                                  "trigger": incident.trigger, "severity": incident.severity,
                                  "subjects": list(incident.subjects), "reason": incident.reason,
                                  "host": self.host, "time": now.isoformat()}, sort_keys=True)
            pub.publish(String(data=payload))  # type: ignore[attr-defined]
            engine.record(due.incident_id, due.step, due.action, "done", f"published on {due.target}", now)
            self.get_logger().error(f"incident {incident.id}: safety-stop request published on {due.target}")
        elif due.action == "snapshot_evidence":
            engine.store.write_evidence(due.incident_id, "posture_after.json", posture)
            engine.record(due.incident_id, due.step, due.action, "done", "posture and health snapshot written", now)
        elif due.action in ("call_trigger", "keystore_rotate"):
            self._call_trigger(due, now)
        else:
            engine.record(due.incident_id, due.step, due.action, "failed", f"unknown action {due.action}", now)

    def _call_trigger(self, due: DueAction, now: _dt.datetime) -> None:
        assert self.incidents is not None
        engine = self.incidents
        client = self._action_clients.get(due.target)
        if client is None:
            client = self._action_clients[due.target] = self.create_client(Trigger, due.target)
        key = (due.incident_id, due.step)
        if not client.service_is_ready():  # type: ignore[attr-defined]
            first = self._waiting_since.setdefault(key, now)
            if (now - first).total_seconds() < SERVICE_WAIT_S:
                engine.release(*key)  # due again next evaluation
                return
            self._waiting_since.pop(key, None)
            engine.record(due.incident_id, due.step, due.action, "failed",
                          f"service {due.target} not available for {SERVICE_WAIT_S:g} s", now)
            return
        self._waiting_since.pop(key, None)
        engine.record(due.incident_id, due.step, due.action, "requested", f"calling {due.target}", now)
        future = client.call_async(Trigger.Request())  # type: ignore[attr-defined]

        def done(fut: Future) -> None:
            try:
                response: Any = fut.result()  # std_srvs/Trigger.Response (no type hints)
                result = "done" if response.success else "failed"
                engine.record(due.incident_id, due.step, due.action, result,
                              f"{due.target} answered success={response.success}: {response.message}"[:500],
                              utc_now())
            except Exception as exc:  # noqa: BLE001
                self.incident_errors += 1
                try:
                    engine.record(due.incident_id, due.step, due.action, "failed", f"{type(exc).__name__}: {exc}",
                                  utc_now())
                except Exception:  # noqa: BLE001 - already counted
                    pass
        future.add_done_callback(done)

    def _alert(self, report: PostureReport, now: _dt.datetime) -> None:
        transitions = self.transitions.update(report.results)
        if not transitions:
            return
        msg = DiagnosticArray()
        msg.header.stamp = to_stamp(now)
        msg.status = [transition_to_status(t, self.host) for t in transitions]
        self._alerts_pub.publish(msg)
        catalog = self.catalog
        assert catalog is not None, "alerts come from a report, and evaluate() reports only with a catalog"
        for transition in transitions:
            critical = is_critical_failure(transition, catalog)
            self.exporters.on_alert(transition, critical)
            if critical:
                self._respond(transition, now)

    def _respond(self, transition: Transition, now: _dt.datetime) -> None:
        self.hooks_fired += 1
        result = transition.result
        previous = transition.previous
        payload = json.dumps({
            "event": "critical_control_failure",
            "control": transition.control_id,
            "title": result.title,
            "previous": Level(int(previous)).name if previous is not None else None,
            "current": Level(int(transition.current)).name,
            "reason": result.reason,
            "host": self.host,
            "time": now.isoformat(),
        }, sort_keys=True)
        self.get_logger().error(f"critical control failure: {payload}")
        if self._response_pub is not None:
            self._response_pub.publish(String(data=payload))
        if self._response_client is not None:
            self._pending_calls += 1
            self._call_pending()

    def _call_pending(self) -> None:
        """Send owed Trigger calls once the service is there (checked every tick; never blocks)."""
        if not self._pending_calls or self._response_client is None:
            return
        if not self._response_client.service_is_ready():
            self.get_logger().warning(
                f"response service {self.params.response_service} not available yet; "
                f"{self._pending_calls} call(s) pending", throttle_duration_sec=5.0)
            return
        while self._pending_calls:
            self._pending_calls -= 1
            future = self._response_client.call_async(Trigger.Request())
            future.add_done_callback(self._on_response_done)

    def _on_response_done(self, future: Future) -> None:
        try:
            response: Any = future.result()  # std_srvs/Trigger.Response (no type hints)
            self.get_logger().info(f"response service answered success={response.success}: {response.message}")
        except Exception as exc:  # noqa: BLE001
            self.get_logger().error(f"response service call failed: {exc}")

    def _publish_own_health(self, now: _dt.datetime) -> None:
        if not self.malformed_messages and not self.load_errors:
            return
        level = Level.ERROR if self.load_errors else Level.WARN
        message = f"{self.malformed_messages} malformed health statuses dropped"
        if self.load_errors:
            message += "; " + "; ".join(self.load_errors)
        msg = DiagnosticArray()
        msg.header.stamp = to_stamp(now)
        msg.status = [DiagnosticStatus(
            level=level_to_byte(level), name=MALFORMED_STATUS, message=message, hardware_id=self.host,
            values=[KeyValue(key="malformed_messages", value=str(self.malformed_messages)),
                    KeyValue(key="reporter", value=self.get_fully_qualified_name())])]
        self._diag_pub.publish(msg)

    # -- service ------------------------------------------------------------------------------
    def report_dict(self) -> dict:
        """The full report: render_report JSON plus malformed count, reporters and load errors."""
        report = self.report if self.report is not None else self.evaluate()
        body: dict = {}
        if report is not None:
            rendered = json.loads(render_report(report, "json"))
            body = rendered if isinstance(rendered, dict) else {"report": rendered}
        body["malformed_messages"] = self.malformed_messages
        body["statuses_received"] = self.statuses_received
        body["reporters"] = sorted(self._reporters)
        body["load_errors"] = list(self.load_errors)
        body["callback_errors"] = self.callback_errors
        body["response_hooks_fired"] = self.hooks_fired
        body["response_calls_pending"] = self._pending_calls
        body["incident_plan"] = str(self.params.incident_plan) if self.incident_plan is not None else None
        body["incident_errors"] = self.incident_errors
        if self.incidents is not None:
            try:
                body["incidents_open"] = sorted(i.id for i in self.incidents.store.list() if i.is_open)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                body["incidents_open"] = f"unreadable: {exc}"
        return body

    def _on_get_report(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            body = self.report_dict()
            response.success = self.report is not None and not self.load_errors
            response.message = json.dumps(body, sort_keys=True)
        except Exception as exc:  # noqa: BLE001
            self.callback_errors += 1
            response.success = False
            response.message = json.dumps({"error": f"{type(exc).__name__}: {exc}",
                                           "malformed_messages": self.malformed_messages})
        return response


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point ``supervisor``."""
    return run_node(SupervisorNode, args)


if __name__ == "__main__":
    sys.exit(main())
