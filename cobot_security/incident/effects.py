"""What the supervisor does about incidents and critical control failures, as values it only carries out.

The node hands in one evaluation's facts (the engine's update, the posture document, the current
findings, its host name, the time) and gets back *effects*: publish this String on that topic,
call this Trigger service, write this evidence document, record this step outcome, log this line,
tell the exporters.  Every payload, document, message and decision is made here without ROS; the
node executes the effects in order and owns only its ROS handles (publishers, clients) and the
waiting for a service to appear.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Union

from cobot_security.clock import iso_utc
from cobot_security.incident.engine import DueAction, EngineUpdate
from cobot_security.incident.incidents import Incident
from cobot_security.posture.alerts import Transition
from cobot_security.status import Finding, Level, finding_to_json

__all__ = [
    "CallActionService", "CallResponseService", "Effect", "Log", "Notify", "PublishString", "RecordOutcome",
    "SERVICE_WAIT_S", "WriteEvidence", "critical_failure_effects", "health_document", "incident_effects",
    "posture_evidence",
    "requested_outcome", "trigger_failed", "trigger_outcome", "unavailable_outcome",
]

#: How long an incident action waits for its Trigger service to appear before one failed attempt.
SERVICE_WAIT_S = 10.0
#: A Trigger answer is cut to this many characters in the timeline.
_DETAIL_CHARS = 500


@dataclass(frozen=True)
class Log:
    """Log ``text`` at ``level`` (ERROR → error, WARN → warning, else info)."""

    level: Level
    text: str


@dataclass(frozen=True)
class Notify:
    """Send an incident event to the exporters (syslog): ``event`` is opened, closed, ..."""

    incident_id: str
    event: str
    level: Level
    message: str
    details: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class WriteEvidence:
    """Write the JSON ``document`` as evidence ``name`` of the incident."""

    incident_id: str
    name: str
    document: Mapping[str, object]


@dataclass(frozen=True)
class PublishString:
    """Publish ``payload`` as a std_msgs/String on ``topic`` (reliable, latched: the response QoS)."""

    topic: str
    payload: str


@dataclass(frozen=True)
class RecordOutcome:
    """Append a step's outcome to the incident timeline (``IncidentEngine.record``)."""

    incident_id: str
    step: int
    action: str
    result: str
    detail: str


@dataclass(frozen=True)
class CallActionService:
    """Call the std_srvs/Trigger service ``due.target`` for an incident step.

    The outcome is recorded with :func:`requested_outcome`, then :func:`trigger_outcome` or
    :func:`trigger_failed`; a service still absent gets :func:`unavailable_outcome`.
    """

    due: DueAction


@dataclass(frozen=True)
class CallResponseService:
    """Owe one call of the response hook's Trigger ``service`` (sent once it is available)."""

    service: str


Effect = Union[Log, Notify, WriteEvidence, PublishString, RecordOutcome, CallActionService, CallResponseService]


def _fit(findings: Iterable[Finding], budget: int) -> tuple[list[dict[str, object]], int]:
    """The leading findings as JSON objects while their compact JSON fits in ``budget`` bytes; the budget left.

    Lazy: the findings after the first one that does not fit are never converted.
    """
    kept: list[dict[str, object]] = []
    for finding in findings:
        item = finding_to_json(finding)
        budget -= len(json.dumps(item, sort_keys=True)) + 2
        if budget < 0:
            return kept, 0
        kept.append(item)
    return kept, budget


def health_document(incident: Incident, findings: Sequence[Finding], now: _dt.datetime,
                    max_bytes: int | None = None) -> dict[str, object]:
    """The ``health.json`` evidence: the findings the incident involves, and all current ones.

    With ``max_bytes`` (compact JSON), the involved findings come first and the others fill what
    is left, in order; ``omitted`` counts the findings that did not fit.
    """
    names = set(incident.evidence)
    involved = [f for f in findings if f.name in names]
    document: dict[str, object] = {"time": iso_utc(now), "incident": incident.id}
    if max_bytes is None:
        document.update({"involved": [finding_to_json(f) for f in involved],
                         "all": [finding_to_json(f) for f in findings]})
        return document
    kept_involved, left = _fit(involved, max_bytes - 1024)
    kept_all, _left = _fit(findings, left)
    omitted = len(involved) - len(kept_involved) + len(findings) - len(kept_all)
    if omitted:
        document["omitted"] = omitted
    document.update({"involved": kept_involved, "all": kept_all})
    return document


#: What a posture snapshot keeps per control when it is over the evidence limit.
_EVIDENCE_KEPT = 50
_REASON_CHARS = 2000


def posture_evidence(posture: Mapping[str, object], max_bytes: int | None) -> Mapping[str, object]:
    """``posture`` as an evidence snapshot within ``max_bytes`` of compact JSON when it can be.

    Over the limit (a cell with very many reporters), each control keeps its first 50 evidence
    names (``evidence_omitted`` counts the rest) and the first 2000 characters of its reason.
    """
    if max_bytes is None or len(json.dumps(posture, separators=(",", ":"), default=str)) <= max_bytes:
        return posture
    controls = posture.get("controls")
    if not isinstance(controls, list):
        return posture
    shrunk = []
    for control in controls:
        if not isinstance(control, dict):
            continue
        control = dict(control)
        evidence = control.get("evidence")
        if isinstance(evidence, list) and len(evidence) > _EVIDENCE_KEPT:
            control["evidence"], control["evidence_omitted"] = evidence[:_EVIDENCE_KEPT], len(evidence) - _EVIDENCE_KEPT
        reason = control.get("reason")
        if isinstance(reason, str) and len(reason) > _REASON_CHARS:
            control["reason"] = reason[:_REASON_CHARS] + "…"
        shrunk.append(control)
    return {**posture, "controls": shrunk}


def _safety_stop_payload(incident: Incident, host: str, now: _dt.datetime) -> str:
    return json.dumps({"event": "incident_safety_stop", "incident": incident.id,
                       "trigger": incident.trigger, "severity": incident.severity,
                       "subjects": list(incident.subjects), "reason": incident.reason,
                       "host": host, "time": now.isoformat()}, sort_keys=True)


def _due_effects(due: DueAction, incident_of: Callable[[str], Incident], posture: Mapping[str, object],
                 host: str, now: _dt.datetime, max_bytes: int | None) -> Iterator[Effect]:
    if due.action == "publish_stop":
        incident = incident_of(due.incident_id)
        yield PublishString(due.target, _safety_stop_payload(incident, host, now))
        yield RecordOutcome(due.incident_id, due.step, due.action, "done", f"published on {due.target}")
        yield Log(Level.ERROR, f"incident {incident.id}: safety-stop request published on {due.target}")
    elif due.action == "snapshot_evidence":
        yield WriteEvidence(due.incident_id, "posture_after.json", posture_evidence(posture, max_bytes))
        yield RecordOutcome(due.incident_id, due.step, due.action, "done", "posture and health snapshot written")
    elif due.action in ("call_trigger", "keystore_rotate"):
        yield CallActionService(due)
    else:
        yield RecordOutcome(due.incident_id, due.step, due.action, "failed", f"unknown action {due.action}")


def incident_effects(
    update: EngineUpdate,
    incident_of: Callable[[str], Incident],
    posture: Mapping[str, object],
    previous_posture: Mapping[str, object] | None,
    findings: Sequence[Finding],
    host: str,
    now: _dt.datetime,
    max_evidence_bytes: int | None = None,
) -> Iterator[Effect]:
    """The effects of one engine update, in the order they are carried out (lazily, one at a time).

    Opened incidents get the posture before (the previous evaluation's, else this one) and the
    health evidence (cut to ``max_evidence_bytes``); closed ones the posture after; each due
    action its own effects.  ``incident_of`` reads an incident record (only for a safety-stop
    request, when it is due).
    """
    for incident in update.opened:
        yield Log(Level.ERROR, f"incident {incident.id} opened: {incident.trigger} {incident.severity}: "
                               f"{incident.reason}")
        yield Notify(incident.id, "opened", Level.ERROR, incident.reason,
                     (("trigger", incident.trigger), ("severity", incident.severity),
                      ("subjects", ",".join(incident.subjects))))
        yield WriteEvidence(incident.id, "posture_before.json",
                            posture_evidence(previous_posture or posture, max_evidence_bytes))
        yield WriteEvidence(incident.id, "health.json", health_document(incident, findings, now, max_evidence_bytes))
    for incident in update.closed:
        yield Log(Level.OK, f"incident {incident.id} closed: trigger cleared")
        yield Notify(incident.id, "closed", Level.OK, "trigger cleared", (("trigger", incident.trigger),))
        yield WriteEvidence(incident.id, "posture_after.json", posture_evidence(posture, max_evidence_bytes))
    for due in update.due:
        yield from _due_effects(due, incident_of, posture, host, now, max_evidence_bytes)


def critical_failure_effects(transition: Transition, host: str, now: _dt.datetime,
                             response_topic: str, response_service: str) -> list[Effect]:
    """The response hooks of a Critical control failure: log it, publish it, owe a Trigger call.

    The topic and the service are the supervisor's ``response_topic`` / ``response_service``
    (empty: that hook is off).
    """
    result = transition.result
    previous = transition.previous
    payload = json.dumps({
        "event": "critical_control_failure",
        "control": transition.control_id,
        "title": result.title,
        "previous": Level(int(previous)).name if previous is not None else None,
        "current": Level(int(transition.current)).name,
        "reason": result.reason,
        "host": host,
        "time": now.isoformat(),
    }, sort_keys=True)
    effects: list[Effect] = [Log(Level.ERROR, f"critical control failure: {payload}")]
    if response_topic:
        effects.append(PublishString(response_topic, payload))
    if response_service:
        effects.append(CallResponseService(response_service))
    return effects


def requested_outcome(due: DueAction) -> RecordOutcome:
    """The timeline entry of a Trigger call just sent (keeps the step in flight)."""
    return RecordOutcome(due.incident_id, due.step, due.action, "requested", f"calling {due.target}")


def trigger_outcome(due: DueAction, success: bool, message: str) -> RecordOutcome:
    """The timeline entry of a Trigger answer: done on success, else failed, with the answer."""
    return RecordOutcome(due.incident_id, due.step, due.action, "done" if success else "failed",
                         f"{due.target} answered success={success}: {message}"[:_DETAIL_CHARS])


def trigger_failed(due: DueAction, exc: BaseException) -> RecordOutcome:
    """The timeline entry of a Trigger call that raised."""
    return RecordOutcome(due.incident_id, due.step, due.action, "failed", f"{type(exc).__name__}: {exc}")


def unavailable_outcome(due: DueAction, waiting_since: _dt.datetime, now: _dt.datetime) -> RecordOutcome | None:
    """None while the service may still appear (retry next evaluation); then one failed attempt."""
    if (now - waiting_since).total_seconds() < SERVICE_WAIT_S:
        return None
    return RecordOutcome(due.incident_id, due.step, due.action, "failed",
                         f"service {due.target} not available for {SERVICE_WAIT_S:g} s")
