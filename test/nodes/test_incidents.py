"""Incidents with real processes: a node absent from the policy opens exactly one incident, the
safety-stop request is published once and recorded in the timeline, and a restarted supervisor
keeps the incident without opening a duplicate or repeating the stop."""

from __future__ import annotations

import json
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from node_helpers import CONTROLS, SignedSender, report_json
from std_msgs.msg import String
from std_srvs.srv import Trigger

from cobot_security.health.envelope import StatusRecord
from cobot_security.incident.incidents import IncidentStore
from cobot_security.nodes.responder import RESPONSE_QOS

POSTURE = "/cobot_security/posture"
STOP = "/test/safety_stop"
TIMEOUT = 25.0
PLAN = f"""\
version: 1
name: node_test_plan
roles:
  lead: {{name: "Lead", contact: "lead@example.invalid"}}
severity:
  control_error: high
  unknown_node: critical
  integrity_violation: critical
  revoked_identity_seen: critical
  segmentation_drift: critical
  stale_reporter: medium
settings:
  stop_topic: {STOP}
  drill_max_age: 180d
playbooks:
  - id: rogue_node
    trigger: unknown_node
    owner: lead
    steps:
      - action: publish_stop
      - action: snapshot_evidence
      - action: manual
        owner: lead
        description: "find the host of the rogue node"
  - id: tamper
    trigger: integrity_violation
    owner: lead
    steps: [{{action: manual, owner: lead, description: "restore"}}]
  - id: revoked
    trigger: revoked_identity_seen
    owner: lead
    steps: [{{action: keystore_revoke, owner: lead}}]
  - id: segmentation
    trigger: segmentation_drift
    owner: lead
    steps: [{{action: manual, owner: lead, description: "restore the ruleset"}}]
"""


#: What the host's health_reporter says when a node the policy does not name joins (signed by its key).
ROGUE = StatusRecord(2, "cobot_security/graph_conformance/cell/rogue", "node /cell/rogue is not in the policy",
                     "testhost", (("reporter", "/health_reporter"),))


def _incidents(directory: Path) -> list:
    try:
        return IncidentStore(directory).list()
    except Exception:  # noqa: BLE001 - a record being replaced; read again next time
        return []


def _stop_done(directory: Path):
    def check():
        found = _incidents(directory)
        return found if found and any(e.action == "publish_stop" and e.result == "done"
                                      for e in found[0].timeline) else None
    return check


def test_rogue_node_opens_one_incident_that_survives_a_restart(start_node, listener, tmp_path: Path,
                                                               healthy_keystore: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    incident_dir = tmp_path / "incidents"
    params = dict(controls=str(CONTROLS), period_s=0.5, incident_plan=str(plan), incident_dir=str(incident_dir),
                  keystore=str(healthy_keystore))
    listener.subscribe(POSTURE)
    listener.subscribe(STOP, String, qos=RESPONSE_QOS)
    health = listener.node.create_publisher(DiagnosticArray, "/cobot_security/health", 10)
    sender = SignedSender(healthy_keystore)
    timer = listener.node.create_timer(0.2, lambda: health.publish(sender.array([ROGUE])))

    sup = start_node("supervisor", **params)
    assert listener.wait_for(lambda: listener.received(STOP), TIMEOUT), sup.output()
    found = listener.wait_for(_stop_done(incident_dir), TIMEOUT)
    assert found, sup.output()
    # several more evaluations with the rogue node still there: nothing new
    seen = len(listener.received(POSTURE))
    assert listener.wait_for(lambda: len(listener.received(POSTURE)) >= seen + 6, TIMEOUT), sup.output()

    [incident] = _incidents(incident_dir)
    assert incident.trigger == "unknown_node" and incident.severity == "critical" and incident.is_open
    assert incident.subjects[0] == "/cell/rogue"
    stops = [json.loads(m.data) for m in listener.received(STOP)]
    assert len(stops) == 1, stops
    assert stops[0]["incident"] == incident.id and stops[0]["subjects"][0] == "/cell/rogue"
    steps = [(e.action, e.result) for e in incident.timeline if e.step is not None]
    assert steps.count(("publish_stop", "done")) == 1
    assert ("snapshot_evidence", "done") in steps and ("manual", "assigned") in steps
    evidence = IncidentStore(incident_dir).incident_dir(incident.id)
    for name in ("posture_before.json", "posture_after.json", "health.json"):
        assert (evidence / name).is_file(), name
    involved = json.loads((evidence / "health.json").read_text())["involved"]
    assert [s["name"] for s in involved] == ["cobot_security/graph_conformance/cell/rogue"]

    # restart: the record is read back, no duplicate opens and the stop is not repeated
    assert sup.stop() is not None
    restarted = start_node("supervisor", **params)
    seen = len(listener.received(POSTURE))
    assert listener.wait_for(lambda: len(listener.received(POSTURE)) >= seen + 8, TIMEOUT), restarted.output()
    response = listener.call_trigger("/supervisor/get_report", TIMEOUT)
    assert response is not None, restarted.output()
    assert report_json(response)["incidents_open"] == [incident.id]
    [after] = _incidents(incident_dir)
    assert after.id == incident.id
    assert [(e.action, e.result) for e in after.timeline if e.step is not None] == steps
    assert len(listener.received(STOP)) == 1
    listener.node.destroy_timer(timer)


#: PLAN's roles, severity and settings, with one playbook of two call_trigger steps.
CALL_PLAN = PLAN.split("playbooks:\n")[0] + """\
playbooks:
  - id: tamper
    trigger: integrity_violation
    owner: lead
    steps:
      - action: call_trigger
        service: /test/cell_stop
      - action: call_trigger
        service: /test/nobody_serves_this
"""


TAMPER = StatusRecord(2, "cobot_security/keystore_integrity/keystore", "modified: enclaves/x/cert.pem", "testhost",
                      (("reporter", "/health_reporter"),))


def _step_results(directory: Path, step: int) -> list[tuple[str, str]]:
    found = _incidents(directory)
    return [(e.result, e.detail) for e in found[0].timeline if e.step == step] if found else []


def test_call_trigger_steps_call_the_service_and_fail_when_it_never_appears(
        start_node, listener, tmp_path: Path, healthy_keystore: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(CALL_PLAN)
    incident_dir = tmp_path / "incidents"
    calls: list[float] = []

    def serve(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        calls.append(1.0)
        response.success = True
        response.message = "cell stopped"
        return response

    listener.node.create_service(Trigger, "/test/cell_stop", serve)
    health = listener.node.create_publisher(DiagnosticArray, "/cobot_security/health", 10)
    sender = SignedSender(healthy_keystore)
    timer = listener.node.create_timer(0.2, lambda: health.publish(sender.array([TAMPER])))
    sup = start_node("supervisor", controls=str(CONTROLS), period_s=0.5, incident_plan=str(plan),
                     incident_dir=str(incident_dir), keystore=str(healthy_keystore))

    answered = listener.wait_for(lambda: ("done", "/test/cell_stop answered success=True: cell stopped")
                                 in _step_results(incident_dir, 0), TIMEOUT)
    assert answered, sup.output()
    assert [r for r, _ in _step_results(incident_dir, 0)] == ["requested", "done"]
    assert len(calls) == 1
    # the absent service is waited for (the step is released, not failed) for 10 s, then fails once
    gave_up = listener.wait_for(lambda: ("failed", "service /test/nobody_serves_this not available for 10 s")
                                in _step_results(incident_dir, 1), TIMEOUT)
    assert gave_up, sup.output()
    assert _step_results(incident_dir, 1)[0] == ("failed", "service /test/nobody_serves_this not available for 10 s")
    listener.node.destroy_timer(timer)
