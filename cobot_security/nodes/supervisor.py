"""supervisor node: health statuses in, posture verdicts, alerts and response hooks out.

``/cobot_security/health`` arrives serialized: a message over ``max_message_bytes`` is dropped
before it is decoded, the rest goes to :class:`~cobot_security.posture.intake.HealthIntake`, which
merges only signed, fresh, unreplayed statuses about subjects their reporter owns into a bounded
:class:`ReporterTracker` keyed by the verified ``<host><enclave>``, and counts everything else by
reason (docs/health.md).  The identity CA and CRL of ``keystore`` are the trust anchor (re-read
when they change); reporters silent past ``forget_after_s`` are forgotten.  Every
period_s the posture is evaluated against the controls catalog and attestations and published on
``/cobot_security/posture``; control transitions that held for ``confirm_count`` evaluations go to
``/cobot_security/alerts``, and a Critical control failing fires the response hooks once.
The incident response plan (``incident_plan``) adds its ``incident_plan`` finding to every
evaluation and drives incidents (``cobot_security.incident``): triggers open one incident each,
persisted under ``incident_dir``; due actions (safety-stop request, Trigger calls, evidence
snapshots) run from the timer without blocking and their outcomes go to the timeline.  What to do
is decided in :mod:`cobot_security.incident.effects`; :class:`IncidentResponder` carries it out.
No callback raises: errors are logged, counted and reported.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from std_srvs.srv import Trigger

from cobot_security.clock import utc_now
from cobot_security.health.envelope import may_be_signed
from cobot_security.health.verifier import HealthVerifier, TrustSource
from cobot_security.nodes.convert import overall_status, report_to_array, status_record, to_stamp, transition_to_status
from cobot_security.nodes.exporters import attach_exporters, declare_export_params
from cobot_security.nodes.health_reporter import run_node
from cobot_security.nodes.params import SupervisorParams, declare_supervisor
from cobot_security.nodes.responder import IncidentResponder
from cobot_security.nodes.signing import HealthSigning
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.posture.alerts import TransitionFilter, is_critical_failure
from cobot_security.posture.attestations import Attestation, load_attestations
from cobot_security.posture.catalog import ControlsCatalog, load_controls
from cobot_security.posture.evaluate import PostureReport, evaluate_posture
from cobot_security.posture.freshness import ReporterTracker
from cobot_security.posture.intake import HealthIntake, supervisor_findings
from cobot_security.posture.report import report_to_dict
from cobot_security.status import Finding, Level

HEALTH_TOPIC = "/cobot_security/health"
POSTURE_TOPIC = "/cobot_security/posture"
ALERTS_TOPIC = "/cobot_security/alerts"
DIAGNOSTICS_TOPIC = "/diagnostics"
REPORT_SERVICE = "/supervisor/get_report"
#: How long one health callback keeps taking queued messages before it yields to the executor
#: (the posture timer and get_report); the executor's own round per message costs more than a drop.
DRAIN_BUDGET_S = 0.02
#: Evaluation durations kept for the latency figures of get_report.
LATENCY_SAMPLES = 1000
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
        common, limits = self.params.common, self.params.limits
        self.transitions = TransitionFilter(confirm_count=self.params.confirm_count)
        self.callback_errors = 0
        self.load_errors: list[str] = []
        self.catalog: ControlsCatalog | None = None
        self.attestations: tuple[Attestation, ...] = ()
        self.policy: WorkcellPolicy | None = None
        self.report: PostureReport | None = None
        self._load_inputs(common.controls, common.attestations, common.policy)
        self.trust = TrustSource(common.keystore)
        self.intake = HealthIntake(
            HealthVerifier(limits.max_clock_skew_s),
            ReporterTracker(stale_after_s=common.stale_after_s, error_after_s=self.params.error_after_s,
                            forget_after_s=limits.forget_after_s, max_reporters=limits.max_reporters),
            self.policy, limits.max_statuses_per_message)
        self._refresh_trust()
        self.forgotten = 0
        self.latencies_ms: deque[tuple[float, float]] = deque(maxlen=LATENCY_SAMPLES)
        self._last_findings: list[Finding] = []
        # Syslog / Prometheus exports (off unless syslog_target / metrics_port are set).
        self.exporters = attach_exporters(self, declare_export_params(self))
        self.responder = IncidentResponder(self, self.params, self.attestations, self.exporters, self.host)

        self._posture_pub = self.create_publisher(DiagnosticArray, POSTURE_TOPIC, 10)
        self._alerts_pub = self.create_publisher(DiagnosticArray, ALERTS_TOPIC, ALERTS_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.signing = HealthSigning(self, common.keystore, self.policy, host=self.host)
        self._health_sub = self.create_subscription(DiagnosticArray, HEALTH_TOPIC, self._on_health,
                                                    limits.health_queue_depth, raw=True)
        self.create_service(Trigger, REPORT_SERVICE, self._on_get_report)
        self._timer = self.create_timer(common.period_s, self._tick)
        self.get_logger().info(
            f"supervising {HEALTH_TOPIC} with {common.controls} and {common.attestations} every {common.period_s}s")

    def _load_inputs(self, controls: Path, attestations: Path, policy: Path) -> None:
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
        try:
            self.policy = load_policy(policy)
        except Exception as exc:  # noqa: BLE001 - without a policy only node reporters' own subjects count
            self.load_errors.append(f"policy: {exc}")
            self.get_logger().error(f"cannot load the policy (host reporters' findings are dropped): {exc}")

    def _refresh_trust(self) -> None:
        """Re-read the identity CA and CRL when they changed; without them every message is dropped."""
        if self.trust.refresh():
            self.intake.verifier.set_anchor(self.trust.anchor)
            if self.trust.anchor is None:
                self.get_logger().error(f"cannot verify health messages: {self.trust.error}")

    def _on_health(self, data: bytes) -> None:
        """Take this message, then drain the queue for up to DRAIN_BUDGET_S (the timer still runs between)."""
        self._take_health(data)
        deadline = time.perf_counter() + DRAIN_BUDGET_S
        while time.perf_counter() < deadline:
            data = self._take_queued()
            if data is None:
                return
            self._take_health(data)

    def _take_queued(self) -> bytes | None:
        """The next queued serialized health message, without a round through the executor; None when empty.

        Uses the subscription handle's take, as rclpy's own executor does (Humble to Kilted); if that
        is not available the executor delivers the next message as usual.
        """
        try:
            with self._health_sub.handle:
                taken = self._health_sub.handle.take_message(DiagnosticArray, True)
        except Exception:  # noqa: BLE001 - not this rclpy's API, or shutting down
            return None
        return taken[0] if taken else None

    def _take_health(self, data: bytes) -> None:
        try:
            if len(data) > self.params.limits.max_message_bytes:
                self.intake.drop_message("oversized")
                return
            if not may_be_signed(data):
                self.intake.drop_message("unsigned")
                return
            try:
                msg = deserialize_message(data, DiagnosticArray)
            except Exception:  # noqa: BLE001 - not a DiagnosticArray: counted
                self.intake.drop_message("undecodable")
                return
            self.intake.accept([status_record(status) for status in msg.status], utc_now())
        except Exception as exc:  # noqa: BLE001 - hostile input must never stop the supervisor
            self.callback_errors += 1
            self.intake.drop_message("undecodable")
            self.get_logger().warning(f"dropped a health message: {type(exc).__name__}: {exc}",
                                      throttle_duration_sec=5.0)

    def evaluate(self) -> PostureReport | None:
        """Evaluate the posture now (None when the catalog could not be loaded)."""
        if self.catalog is None:
            return None
        now = utc_now()
        findings = self.intake.tracker.current(now) + self.responder.plan_findings(now)
        self._last_findings = findings
        return evaluate_posture(self.catalog, findings, self.attestations, now)

    def _tick(self) -> None:
        started = time.perf_counter()
        now = utc_now()
        try:
            self._refresh_trust()
            self.forgotten += len(self.intake.forget(now))
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
            self.responder.call_pending()
            if report is None:
                msg = DiagnosticArray()
                msg.header.stamp = to_stamp(now)
                msg.status = [overall_status(Level.ERROR, 0, self.host, reason)]
                self._posture_pub.publish(msg)
            else:
                self.report = report
                self._posture_pub.publish(report_to_array(report, self.host, now))
                self._alert(report, now)
                self.responder.on_report(report, self._last_findings, now)
            self.exporters.on_report(report, self._last_findings, None, self.responder.open_incident_count())
            self._diag_pub.publish(self.signing.array(self.own_findings(), now))
        except Exception as exc:  # noqa: BLE001
            self.callback_errors += 1
            self.get_logger().error(f"publishing the posture failed: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=5.0)
        self.latencies_ms.append((now.timestamp(), (time.perf_counter() - started) * 1000.0))

    def destroy_node(self) -> None:
        """Flush the exporters before the node goes."""
        self.exporters.close()
        super().destroy_node()

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
                self.responder.on_critical(transition, now)

    def own_findings(self) -> list[Finding]:
        """The supervisor's own statuses: input dropped by reason, trust anchor, load errors."""
        trust_error = "" if self.trust.anchor is not None else self.trust.error
        return supervisor_findings(self.intake, trust_error, self.load_errors, len(self.intake.tracker),
                                   self.forgotten)

    def report_dict(self) -> dict:
        """The full report: the posture report's JSON form plus malformed count, reporters and load errors."""
        report = self.report if self.report is not None else self.evaluate()
        body: dict = report_to_dict(report) if report is not None else {}
        counts = self.intake.counts
        body["malformed_messages"] = counts.malformed
        body["statuses_received"] = counts.statuses_received
        body["health_intake"] = counts.as_dict()
        body["last_rejection"] = self.intake.last_rejection
        body["trust_anchor"] = "ok" if self.trust.anchor is not None else self.trust.error
        body["reporters"] = self.intake.tracker.reporters()
        body["reporters_forgotten"] = self.forgotten
        body["evaluation_ms"] = latency_summary(self.latencies_ms)
        body["load_errors"] = list(self.load_errors)
        body["callback_errors"] = self.callback_errors
        body.update(self.responder.report_fields())
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
                                           "malformed_messages": self.intake.counts.malformed})
        return response


def latency_summary(samples: Sequence[tuple[float, float]]) -> dict[str, object]:
    """count, p50, p99 and max of the tick durations kept (ms, nearest rank), and the last 120 as [unix time, ms]."""
    ordered = sorted(ms for _when, ms in samples)
    if not ordered:
        return {"count": 0, "recent": []}

    def rank(percent: int) -> float:
        return round(ordered[max(0, math.ceil(len(ordered) * percent / 100) - 1)], 3)
    recent = [[round(when, 3), round(ms, 3)] for when, ms in list(samples)[-120:]]
    return {"count": len(ordered), "p50": rank(50), "p99": rank(99), "max": round(ordered[-1], 3), "recent": recent}


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point ``supervisor``."""
    return run_node(SupervisorNode, args)


if __name__ == "__main__":
    sys.exit(main())
