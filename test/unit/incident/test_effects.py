"""Effects: what the supervisor carries out for an engine update and for a Critical control failure."""

from __future__ import annotations

import datetime as dt
import json

from cobot_security.incident.effects import (
    SERVICE_WAIT_S,
    CallActionService,
    CallResponseService,
    Log,
    Notify,
    PublishString,
    RecordOutcome,
    WriteEvidence,
    critical_failure_effects,
    health_document,
    incident_effects,
    posture_evidence,
    trigger_failed,
    trigger_outcome,
    unavailable_outcome,
)
from cobot_security.incident.engine import DueAction, EngineUpdate, IncidentEngine
from cobot_security.posture.alerts import Transition
from cobot_security.posture.catalog import Priority
from cobot_security.posture.evaluate import ControlResult
from cobot_security.status import Finding, Level

ROGUE = Finding("graph_conformance", "/cell/rogue", Level.ERROR, "node /cell/rogue is not in the policy",
                (("reporter", "host1/health_reporter"),))
OTHER = Finding("cert_expiry", "/cell/arm", Level.OK, "valid")
POSTURE = {"name": "cobot_security/posture", "score": 50}
BEFORE = {"name": "cobot_security/posture", "score": 100}


def test_opened_incident_logs_notifies_and_writes_before_and_health(plan, store, now) -> None:
    engine = IncidentEngine(plan, store)
    update = engine.evaluate([], [ROGUE, OTHER], now)
    incident = update.opened[0]
    effects = list(incident_effects(update, store.get, POSTURE, BEFORE, [ROGUE, OTHER], "host1", now))
    assert effects[:4] == [
        Log(Level.ERROR, f"incident {incident.id} opened: unknown_node critical: {incident.reason}"),
        Notify(incident.id, "opened", Level.ERROR, incident.reason,
               (("trigger", "unknown_node"), ("severity", "critical"),
                ("subjects", "/cell/rogue,host1/health_reporter"))),
        WriteEvidence(incident.id, "posture_before.json", BEFORE),
        WriteEvidence(incident.id, "health.json", health_document(incident, [ROGUE, OTHER], now)),
    ]
    health = health_document(incident, [ROGUE, OTHER], now)
    assert [f["name"] for f in health["involved"]] == [ROGUE.name]  # type: ignore[index,union-attr]
    assert len(health["all"]) == 2  # type: ignore[arg-type]
    # the first evaluation has no previous posture: the current one is the "before"
    first = list(incident_effects(update, store.get, POSTURE, None, [ROGUE], "host1", now))
    assert first[2] == WriteEvidence(incident.id, "posture_before.json", POSTURE)


def test_due_publish_stop_then_call_trigger(plan, store, now) -> None:
    engine = IncidentEngine(plan, store)
    update = engine.evaluate([], [ROGUE], now)
    incident = update.opened[0]
    due_effects = list(incident_effects(update, store.get, POSTURE, None, [ROGUE], "host1", now))[4:]
    publish, record, log, call = due_effects
    assert isinstance(publish, PublishString) and publish.topic == "/cell/safety_stop"
    assert json.loads(publish.payload) == {
        "event": "incident_safety_stop", "incident": incident.id, "trigger": "unknown_node",
        "severity": "critical", "subjects": ["/cell/rogue", "host1/health_reporter"], "reason": incident.reason,
        "host": "host1", "time": now.isoformat()}
    assert record == RecordOutcome(incident.id, 0, "publish_stop", "done", "published on /cell/safety_stop")
    assert log == Log(Level.ERROR, f"incident {incident.id}: safety-stop request published on /cell/safety_stop")
    assert call == CallActionService(DueAction(incident.id, 1, "call_trigger", "/cell/stop"))


def test_snapshot_close_and_unknown_action(store, now) -> None:
    update = EngineUpdate((), (), (DueAction("inc-1", 0, "snapshot_evidence", ""),
                                   DueAction("inc-1", 1, "teleport", "/x")), ())

    def no_lookup(incident_id: str):  # only a safety-stop request reads the record
        raise AssertionError(incident_id)

    assert list(incident_effects(update, no_lookup, POSTURE, BEFORE, [], "h", now)) == [
        WriteEvidence("inc-1", "posture_after.json", POSTURE),
        RecordOutcome("inc-1", 0, "snapshot_evidence", "done", "posture and health snapshot written"),
        RecordOutcome("inc-1", 1, "teleport", "failed", "unknown action teleport"),
    ]


def test_closed_incident_writes_posture_after(plan, store, now) -> None:
    engine = IncidentEngine(plan, store)
    stale = Finding("reporter_liveness", "/host1/rep", Level.STALE, "no report")
    incident = engine.evaluate([], [stale], now).opened[0]
    update = engine.evaluate([], [], now + dt.timedelta(minutes=1))
    assert [i.id for i in update.closed] == [incident.id]
    assert list(incident_effects(update, store.get, POSTURE, BEFORE, [], "h", now)) == [
        Log(Level.OK, f"incident {incident.id} closed: trigger cleared"),
        Notify(incident.id, "closed", Level.OK, "trigger cleared", (("trigger", "stale_reporter"),)),
        WriteEvidence(incident.id, "posture_after.json", POSTURE),
    ]


def _transition(previous: Level | None) -> Transition:
    result = ControlResult("incident_response", "Incident response", Priority.CRITICAL, Level.ERROR, "no drill",
                           (), ())
    return Transition("incident_response", previous, Level.ERROR, result)


def test_critical_failure_hooks(now) -> None:
    log, publish, call = critical_failure_effects(_transition(Level.OK), "host1", now, "/stop", "/stop_srv")
    assert json.loads(publish.payload) == {  # type: ignore[union-attr]
        "event": "critical_control_failure", "control": "incident_response", "title": "Incident response",
        "previous": "OK", "current": "ERROR", "reason": "no drill", "host": "host1", "time": now.isoformat()}
    assert publish == PublishString("/stop", publish.payload)  # type: ignore[union-attr]
    assert log == Log(Level.ERROR, f"critical control failure: {publish.payload}")  # type: ignore[union-attr]
    assert call == CallResponseService("/stop_srv")
    only_log = critical_failure_effects(_transition(None), "host1", now, "", "")
    assert len(only_log) == 1 and json.loads(only_log[0].text.split(": ", 1)[1])["previous"] is None  # type: ignore[union-attr]


def test_trigger_outcomes_and_service_wait(now) -> None:
    due = DueAction("inc-1", 2, "keystore_rotate", "/keystore_manager/rotate_due")
    assert trigger_outcome(due, True, "rotated").result == "done"
    failed = trigger_outcome(due, False, "x" * 1000)
    assert failed.result == "failed" and len(failed.detail) == 500
    assert failed.detail.startswith("/keystore_manager/rotate_due answered success=False: xxx")
    assert trigger_failed(due, TimeoutError("late")).detail == "TimeoutError: late"
    wait = dt.timedelta(seconds=SERVICE_WAIT_S)
    assert unavailable_outcome(due, now, now + wait - dt.timedelta(microseconds=1)) is None
    at = unavailable_outcome(due, now, now + wait)
    assert at == RecordOutcome("inc-1", 2, "keystore_rotate", "failed",
                               "service /keystore_manager/rotate_due not available for 10 s")
    assert unavailable_outcome(due, now, now + wait + dt.timedelta(seconds=1)) == at


def test_health_evidence_keeps_the_involved_findings_within_the_byte_limit(plan, store, now) -> None:
    incident = IncidentEngine(plan, store).evaluate([], [ROGUE], now).opened[0]
    many = [Finding("cert_expiry", f"/cell/e{i}", Level.OK, "valid " + "x" * 200) for i in range(500)] + [ROGUE]
    health = health_document(incident, many, now, max_bytes=20_000)
    assert len(json.dumps(health)) <= 20_000
    assert [f["name"] for f in health["involved"]] == [ROGUE.name]  # type: ignore[index,union-attr]
    assert health["omitted"] == 501 - len(health["all"])  # type: ignore[arg-type]
    assert "omitted" not in health_document(incident, [ROGUE], now, max_bytes=20_000)


def test_posture_snapshot_over_the_limit_keeps_the_first_evidence() -> None:
    big = {"name": "cobot_security/posture", "score": 10, "controls": [
        {"control": "per_node_identity", "reason": "r" * 5000, "evidence": [f"e{i}" for i in range(3000)]}]}
    assert posture_evidence(POSTURE, 1000) is POSTURE
    shrunk = posture_evidence(big, 10_000)
    [control] = shrunk["controls"]  # type: ignore[misc]
    assert control["evidence"] == [f"e{i}" for i in range(50)] and control["evidence_omitted"] == 2950
    assert len(control["reason"]) == 2001 and len(json.dumps(shrunk)) < 10_000
    assert big["controls"][0]["evidence"][-1] == "e2999"  # type: ignore[index]  # the original is untouched
