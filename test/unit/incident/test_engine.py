"""Engine: trigger detection, dedupe (also across restarts), idempotent and rate-limited actions, closing."""

from __future__ import annotations

import datetime as dt

import pytest

from cobot_security.errors import InputError
from cobot_security.incident.engine import IncidentEngine, detect_triggers
from cobot_security.incident.incidents import IncidentStore, close_incident
from cobot_security.posture.catalog import Priority
from cobot_security.posture.evaluate import ControlResult
from cobot_security.status import Finding, Level

ROGUE = Finding("graph_conformance", "/cell/rogue", Level.ERROR, "node /cell/rogue is not in the policy",
                (("reporter", "host1/health_reporter"),))


def _result(control_id: str, level: Level) -> ControlResult:
    return ControlResult(control_id, control_id, Priority.HIGH, level, "why", ("ev",), ("ref",))


def test_detects_each_trigger(plan) -> None:
    findings = [
        ROGUE,
        Finding("graph_conformance", "/cell/arm", Level.ERROR, "publishes an ungranted topic"),
        Finding("keystore_integrity", "/keystore", Level.ERROR, "modified: enclaves/x/cert.pem"),
        Finding("cert_chain", "/cell/arm", Level.ERROR, "certificate serial 1f is revoked (on the CRL since …)"),
        Finding("cert_chain", "/cell/gripper", Level.ERROR, "does not chain to the identity CA"),
        Finding("network_ruleset", "/host1", Level.ERROR, "ruleset differs"),
        Finding("reporter_liveness", "/host1/rep", Level.STALE, "no report since …"),
        Finding("reporter_liveness", "/host2/rep", Level.OK, "last report"),
    ]
    results = [_result("per_node_identity", Level.ERROR), _result("audit_logging", Level.ERROR)]
    keys = [e.key for e in detect_triggers(plan, results, findings)]
    assert keys == ["unknown_node:/cell/rogue", "integrity_violation:/keystore", "revoked_identity_seen:/cell/arm",
                    "segmentation_drift:/host1", "stale_reporter:/host1/rep", "control_error:/per_node_identity"]
    rogue = detect_triggers(plan, [], [ROGUE])[0]
    assert rogue.subjects == ("/cell/rogue", "host1/health_reporter")
    assert rogue.evidence == ("cobot_security/graph_conformance/cell/rogue",)


def test_one_incident_per_trigger_and_subject_even_after_restart(plan, store, now) -> None:
    engine = IncidentEngine(plan, store)
    first = engine.evaluate([], [ROGUE], now)
    assert len(first.opened) == 1
    incident = first.opened[0]
    assert incident.severity == "critical" and incident.trigger == "unknown_node"
    assert [e.result for e in incident.timeline] == ["done", "assigned"]  # opened + manual step assigned
    assert engine.evaluate([], [ROGUE], now + dt.timedelta(seconds=1)).opened == ()
    restarted = IncidentEngine(plan, IncidentStore(store.directory))
    assert restarted.evaluate([], [ROGUE], now + dt.timedelta(seconds=2)).opened == ()
    assert [i.id for i in store.list()] == [incident.id]


def test_actions_are_due_once_and_done_is_never_repeated(plan, store, now) -> None:
    engine = IncidentEngine(plan, store)
    update = engine.evaluate([], [ROGUE], now)
    assert [(d.action, d.target) for d in update.due] == [("publish_stop", "/cell/safety_stop"),
                                                         ("call_trigger", "/cell/stop")]
    # while in flight, nothing is due again
    assert engine.evaluate([], [ROGUE], now).due == ()
    incident_id = update.opened[0].id
    engine.record(incident_id, 0, "publish_stop", "done", "published", now)
    engine.record(incident_id, 1, "call_trigger", "done", "ok", now)
    assert engine.evaluate([], [ROGUE], now).due == ()
    # a restarted engine reads the timeline: still nothing to do
    assert IncidentEngine(plan, IncidentStore(store.directory)).evaluate([], [ROGUE], now).due == ()


def test_failed_steps_retry_then_give_up(plan, store, now) -> None:
    engine = IncidentEngine(plan, store)
    update = engine.evaluate([], [ROGUE], now)
    incident_id = update.opened[0].id
    engine.record(incident_id, 0, "publish_stop", "done", "", now)
    engine.record(incident_id, 1, "call_trigger", "failed", "attempt 0", now)  # due since evaluate()
    for attempt in range(1, plan.max_attempts):
        [due] = engine.due_actions(now)
        assert due.step == 1
        engine.record(incident_id, 1, "call_trigger", "failed", f"attempt {attempt}", now)
    assert engine.due_actions(now) == []
    assert store.get(incident_id).timeline[-1].result == "gave_up"
    assert engine.due_actions(now) == []


def test_rate_limits_per_incident_and_global(plan, store, now) -> None:
    # per_incident 3 attempts per 10 min, global 4
    engine = IncidentEngine(plan, store)
    incident_id = engine.evaluate([], [ROGUE], now).opened[0].id
    engine.record(incident_id, 0, "publish_stop", "failed", "", now)
    engine.record(incident_id, 1, "call_trigger", "failed", "", now)
    [due] = engine.due_actions(now)          # third attempt still allowed, the fourth is not
    engine.record(incident_id, due.step, due.action, "failed", "", now)
    assert engine.due_actions(now) == []
    limited = [e for e in store.get(incident_id).timeline if e.result == "rate_limited"]
    assert len(limited) == 1
    assert engine.due_actions(now) == [] and len(
        [e for e in store.get(incident_id).timeline if e.result == "rate_limited"]) == 1  # recorded once
    # after the window the budget is back
    later = now + plan.rate.window + dt.timedelta(seconds=1)
    assert engine.due_actions(later)
    # global: a second incident shares the remaining global budget (4 - 3 in the window)
    other = Finding("network_ruleset", "/host1", Level.ERROR, "drift")
    engine2 = IncidentEngine(plan, store)
    update = engine2.evaluate([], [ROGUE, other], now)
    assert [d.action for d in update.due] == ["publish_stop"]


def test_auto_close_when_the_trigger_clears_only_if_allowed(plan, store, now) -> None:
    engine = IncidentEngine(plan, store)
    stale = Finding("reporter_liveness", "/host1/rep", Level.STALE, "no report")
    opened = engine.evaluate([], [ROGUE, stale], now).opened
    assert {i.trigger for i in opened} == {"unknown_node", "stale_reporter"}
    update = engine.evaluate([], [], now + dt.timedelta(seconds=5))
    assert [i.trigger for i in update.closed] == ["stale_reporter"]
    by_trigger = {i.trigger: i for i in store.list()}
    assert by_trigger["stale_reporter"].status == "closed"
    assert by_trigger["unknown_node"].is_open  # auto_close false: waits for the operator
    # the trigger returning opens a new incident (the old one is closed)
    assert len(engine.evaluate([], [stale], now + dt.timedelta(seconds=9)).opened) == 1


def test_operator_close_and_closing_twice(plan, store, now) -> None:
    engine = IncidentEngine(plan, store)
    incident_id = engine.evaluate([], [ROGUE], now).opened[0].id
    closed = close_incident(store, incident_id, "rogue laptop removed", now)
    assert closed.status == "closed" and closed.close_note == "rogue laptop removed"
    assert closed.timeline[-1].event == "closed"
    with pytest.raises(InputError, match="expected an open incident"):
        close_incident(store, incident_id, "again", now)
    assert engine.due_actions(now) == []


def test_bad_incident_ids_are_refused(store) -> None:
    with pytest.raises(InputError, match="incident id: expected an id like"):
        store.get("../../etc")
    for tail in ("\n", "\r\n", "/..", " "):  # matched whole: no trailing newline slips past '$'
        with pytest.raises(InputError, match="incident id: expected an id like"):
            store.get("inc-20261129T120000Z-1a2b3c4d" + tail)


def test_openings_per_window_are_capped_and_resume_later(plan, store, now) -> None:
    engine = IncidentEngine(plan, store, max_opened=2, open_window=dt.timedelta(minutes=10))
    rogues = [Finding("graph_conformance", f"/cell/rogue_{i}", Level.ERROR, "node is not in the policy")
              for i in range(5)]
    first = engine.evaluate([], rogues, now)
    assert len(first.opened) == 2 and len(first.suppressed) == 3
    assert engine.evaluate([], rogues, now + dt.timedelta(minutes=5)).opened == ()
    later = engine.evaluate([], rogues, now + dt.timedelta(minutes=11))
    assert len(later.opened) == 2 and len(later.suppressed) == 1
    assert len(store.list()) == 4


def test_evidence_over_the_limit_is_replaced_by_a_note(plan, tmp_path, now) -> None:
    store = IncidentStore(tmp_path / "incidents", max_evidence_bytes=2000)
    incident = IncidentEngine(plan, store).evaluate([], [ROGUE], now).opened[0]
    small = store.write_evidence(incident.id, "posture_after.json", {"score": 40})
    big = store.write_evidence(incident.id, "health.json", {"all": ["x" * 100] * 100})
    assert "score" in small.read_text()
    text = big.read_text()
    assert len(text) < 2000 and '"omitted": true' in text and "max_evidence_bytes" in text


def test_openings_per_evaluation_are_spread(plan, store, now) -> None:
    engine = IncidentEngine(plan, store, max_per_evaluation=2)
    rogues = [Finding("graph_conformance", f"/cell/rogue_{i}", Level.ERROR, "node is not in the policy")
              for i in range(5)]
    assert [len(engine.evaluate([], rogues, now).opened) for _ in range(4)] == [2, 2, 1, 0]
