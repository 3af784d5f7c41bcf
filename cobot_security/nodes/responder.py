"""The supervisor's hands for incidents and response hooks: carries out effects on its node.

What to do is decided in :mod:`cobot_security.incident.effects` (payloads, evidence documents,
timeline outcomes, which hook fires); this adapter owns the ROS handles those effects need: one
latched String publisher per topic, Trigger clients, the calls owed to a response service that is
not up yet, and the wait for an incident step's service.  Nothing here blocks or raises into the
supervisor's timer: failures are logged and counted.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from rclpy.client import Client
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from std_msgs.msg import String
from std_srvs.srv import Trigger

from cobot_security.clock import utc_now
from cobot_security.incident.effects import (
    CallActionService,
    CallResponseService,
    Effect,
    Log,
    Notify,
    PublishString,
    RecordOutcome,
    WriteEvidence,
    critical_failure_effects,
    incident_effects,
    requested_outcome,
    trigger_failed,
    trigger_outcome,
    unavailable_outcome,
)
from cobot_security.incident.engine import DueAction, IncidentEngine
from cobot_security.incident.incidents import IncidentStore
from cobot_security.incident.plan import IncidentPlan, check_plan_file, plan_findings
from cobot_security.nodes.exporters import Exporters
from cobot_security.nodes.params import SupervisorParams
from cobot_security.posture.alerts import Transition
from cobot_security.posture.attestations import Attestation
from cobot_security.posture.evaluate import PostureReport
from cobot_security.posture.report import report_to_dict
from cobot_security.status import Finding, Level

#: QoS of the response topic: reliable and latched, so that a safety system that (re)joins after the
#: failure still receives the stop request (each payload carries its time; depth 10).
RESPONSE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)


#: Incidents opened in one evaluation at most (more wait for the next ones): writing their evidence
#: must not stall the posture timer when many triggers fire at once.
OPENED_PER_EVALUATION = 2


class IncidentResponder:
    """Loads the incident plan, drives its engine each evaluation and carries out the effects."""

    def __init__(self, node: Node, params: SupervisorParams, attestations: tuple[Attestation, ...],
                 exporters: Exporters, host: str) -> None:
        self._node = node
        self._params = params
        self._attestations = attestations
        self._exporters = exporters
        self._host = host
        self.hooks_fired = 0
        self.errors = 0
        self.suppressed = 0  # incident openings refused by the per-window limit
        self.plan: IncidentPlan | None = None
        self.engine: IncidentEngine | None = None
        self._plan_error: list[Finding] = []
        self._previous_posture: dict[str, object] | None = None
        #: String publishers by topic (RESPONSE_QOS): the response topic, then each safety-stop topic.
        self._publishers: dict[str, Any] = {}
        self._action_clients: dict[str, Any] = {}
        self._waiting_since: dict[tuple[str, int], _dt.datetime] = {}
        self._pending_calls = 0  # Trigger calls owed to a response service not yet available
        self._load_plan()
        if params.response_topic:
            self._publisher(params.response_topic)
        self._response_client: Client[Any, Any] | None = (
            node.create_client(Trigger, params.response_service) if params.response_service else None
        )

    def _load_plan(self) -> None:
        """Load the incident plan; an invalid plan is an ERROR incident_plan finding, not a crash."""
        path = self._params.incident_plan
        plan, findings = check_plan_file(path, utc_now(), self._attestations)
        if plan is None:
            self._plan_error = findings
            self._node.get_logger().error(f"incident response plan not loaded: {findings[0].message}")
            return
        self.plan = plan
        limits = self._params.limits
        self.engine = IncidentEngine(plan, IncidentStore(self._params.incident_dir, limits.max_evidence_bytes),
                                     limits.max_incidents_per_window, _dt.timedelta(seconds=limits.incident_window_s),
                                     OPENED_PER_EVALUATION)
        self._node.get_logger().info(f"incident plan {path}: {len(plan.playbooks)} playbooks; incidents in "
                                     f"{self._params.incident_dir}")

    def plan_findings(self, now: _dt.datetime) -> list[Finding]:
        """The ``incident_plan`` findings of this evaluation (the load error when it did not load)."""
        if self.plan is None:
            return list(self._plan_error)
        return plan_findings(self.plan, now, self._attestations)

    def on_report(self, report: PostureReport, findings: list[Finding], now: _dt.datetime) -> None:
        """Open/close incidents for this evaluation and carry out their effects (never blocks)."""
        if self.engine is None:
            return
        try:
            store = self.engine.store
            posture = report_to_dict(report)
            update = self.engine.evaluate(report.results, findings, now)
            if update.suppressed:
                self.suppressed += len(update.suppressed)
                self._node.get_logger().warning(
                    f"incident limit reached ({self._params.limits.max_incidents_per_window} per "
                    f"{self._params.limits.incident_window_s:g} s): {len(update.suppressed)} trigger(s) not opened, "
                    f"e.g. {update.suppressed[0].key}", throttle_duration_sec=10.0)
            for effect in incident_effects(update, store.get, posture, self._previous_posture, findings,
                                           self._host, now, self._params.limits.max_evidence_bytes):
                self._carry_out(effect, now)
            self._previous_posture = posture
        except Exception as exc:  # noqa: BLE001 - the incident engine must never stop the posture
            self.errors += 1
            self._node.get_logger().error(f"incident handling failed: {type(exc).__name__}: {exc}",
                                          throttle_duration_sec=5.0)

    def on_critical(self, transition: Transition, now: _dt.datetime) -> None:
        """Fire the response hooks for a Critical control failure."""
        self.hooks_fired += 1
        for effect in critical_failure_effects(transition, self._host, now, self._params.response_topic,
                                               self._params.response_service):
            self._carry_out(effect, now)

    def _carry_out(self, effect: Effect, now: _dt.datetime) -> None:
        """Execute one effect; ``now`` stamps the timeline entries it records."""
        if isinstance(effect, Log):
            log = self._node.get_logger()
            {Level.ERROR: log.error, Level.WARN: log.warning}.get(effect.level, log.info)(effect.text)
        elif isinstance(effect, Notify):
            self._exporters.on_incident(effect.incident_id, effect.event, effect.level, effect.message,
                                        dict(effect.details))
        elif isinstance(effect, WriteEvidence):
            assert self.engine is not None, "evidence is written only for incidents"
            self.engine.store.write_evidence(effect.incident_id, effect.name, effect.document)
        elif isinstance(effect, PublishString):
            self._publisher(effect.topic).publish(String(data=effect.payload))
        elif isinstance(effect, RecordOutcome):
            self._record(effect, now)
        elif isinstance(effect, CallActionService):
            self._call_action(effect.due, now)
        elif isinstance(effect, CallResponseService):
            self._pending_calls += 1
            self.call_pending()

    def _publisher(self, topic: str) -> Any:
        """The String publisher of ``topic`` (created on first use, reliable and latched)."""
        if topic not in self._publishers:
            self._publishers[topic] = self._node.create_publisher(String, topic, RESPONSE_QOS)
        return self._publishers[topic]

    def _record(self, outcome: RecordOutcome, now: _dt.datetime) -> None:
        assert self.engine is not None, "outcomes are recorded only for incidents"
        self.engine.record(outcome.incident_id, outcome.step, outcome.action, outcome.result, outcome.detail, now)

    def _call_action(self, due: DueAction, now: _dt.datetime) -> None:
        """Call an incident step's Trigger service without blocking; its answer is recorded later."""
        assert self.engine is not None
        engine = self.engine
        client = self._action_clients.get(due.target)
        if client is None:
            client = self._action_clients[due.target] = self._node.create_client(Trigger, due.target)
        key = (due.incident_id, due.step)
        if not client.service_is_ready():
            outcome = unavailable_outcome(due, self._waiting_since.setdefault(key, now), now)
            if outcome is None:
                engine.release(*key)  # due again next evaluation
                return
            self._waiting_since.pop(key, None)
            self._record(outcome, now)
            return
        self._waiting_since.pop(key, None)
        self._record(requested_outcome(due), now)
        future = client.call_async(Trigger.Request())

        def done(fut: Future) -> None:
            try:
                response: Any = fut.result()  # std_srvs/Trigger.Response (no type hints)
                self._record(trigger_outcome(due, response.success, response.message), utc_now())
            except Exception as exc:  # noqa: BLE001
                self.errors += 1
                try:
                    self._record(trigger_failed(due, exc), utc_now())
                except Exception:  # noqa: BLE001 - already counted
                    pass
        future.add_done_callback(done)

    def call_pending(self) -> None:
        """Send owed Trigger calls once the service is there (checked every tick; never blocks)."""
        if not self._pending_calls or self._response_client is None:
            return
        if not self._response_client.service_is_ready():
            self._node.get_logger().warning(
                f"response service {self._params.response_service} not available yet; "
                f"{self._pending_calls} call(s) pending", throttle_duration_sec=5.0)
            return
        while self._pending_calls:
            self._pending_calls -= 1
            future = self._response_client.call_async(Trigger.Request())
            future.add_done_callback(self._on_response_done)

    def _on_response_done(self, future: Future) -> None:
        try:
            response: Any = future.result()  # std_srvs/Trigger.Response (no type hints)
            self._node.get_logger().info(
                f"response service answered success={response.success}: {response.message}")
        except Exception as exc:  # noqa: BLE001
            self._node.get_logger().error(f"response service call failed: {exc}")

    def open_incident_count(self) -> int:
        """Open incidents for the metrics (0 when incident handling is off or unreadable)."""
        if self.engine is None:
            return 0
        try:
            return sum(1 for incident in self.engine.store.list() if incident.status == "open")
        except Exception:  # noqa: BLE001 - a metric must not break the posture
            return 0

    def report_fields(self) -> dict[str, object]:
        """The get_report fields about hooks and incidents."""
        fields: dict[str, object] = {
            "response_hooks_fired": self.hooks_fired,
            "response_calls_pending": self._pending_calls,
            "incident_plan": str(self._params.incident_plan) if self.plan is not None else None,
            "incident_errors": self.errors,
            "incidents_suppressed": self.suppressed,
        }
        if self.engine is not None:
            try:
                fields["incidents_open"] = sorted(i.id for i in self.engine.store.list() if i.is_open)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                fields["incidents_open"] = f"unreadable: {exc}"
        return fields
