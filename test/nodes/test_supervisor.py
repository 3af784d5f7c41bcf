"""supervisor as a real process: posture per control, reporter liveness, hostile input, response hooks."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from node_helpers import CONTROLS, WORKCELL, SignedSender, level, report_json, statuses, values
from std_msgs.msg import String
from std_srvs.srv import Trigger

from cobot_security.nodes.convert import status_record
from cobot_security.nodes.responder import RESPONSE_QOS
from cobot_security.nodes.supervisor import ALERTS_QOS
from cobot_security.posture.catalog import Priority, load_controls  # noqa: E402

POSTURE = "/cobot_security/posture"
ALERTS = "/cobot_security/alerts"
OVERALL = "cobot_security/posture"
TIMEOUT = 25.0
KEYSTORE_CHECKS = {"cert_expiry", "cert_chain", "permissions_validity", "governance", "crl", "key_modes",
                   "keystore_integrity"}


def _control_name(control_id: str) -> str:
    return f"{OVERALL}/{control_id}"


def _stack(start_node, keystore: Path, *, reporter: bool = True, **supervisor_params: object):
    params = dict(controls=str(CONTROLS), period_s=0.5, keystore=str(keystore))
    params.update(supervisor_params)
    sup = start_node("supervisor", **params)
    rep = None
    if reporter:
        rep = start_node("health_reporter", keystore=str(keystore), policy=str(WORKCELL), period_s=0.5)
    return sup, rep


def _latest_posture(listener, predicate=lambda s: True):
    def find():
        for msg in reversed(listener.received(POSTURE)):
            by_name = statuses(msg)
            if predicate(by_name):
                return by_name
        return None
    return find


def test_posture_has_one_status_per_control_and_a_score(start_node, listener, healthy_keystore: Path) -> None:
    catalog = load_controls(CONTROLS)
    listener.subscribe(POSTURE)
    sup, rep = _stack(start_node, healthy_keystore)

    # wait for an evaluation that has the reporter's evidence (per_node_identity no longer "no evidence")
    def has_evidence(by_name):
        status = by_name.get(_control_name("per_node_identity"))
        return status is not None and "no evidence" not in status.message
    posture = listener.wait_for(_latest_posture(listener, has_evidence), TIMEOUT)
    assert posture is not None, sup.output() + rep.output()

    assert set(posture) == {OVERALL} | {_control_name(c.id) for c in catalog.controls}
    score = int(values(posture[OVERALL])["score"])
    assert 0 <= score <= 100
    for control in catalog.controls:
        kv = values(posture[_control_name(control.id)])
        assert kv["control"] == control.id
        assert kv["references"] == "; ".join(control.references)

    # keystore-only automated controls: OK evidence from the keystore, only the CRL gap (WARN) left
    identity = posture[_control_name("per_node_identity")]
    assert level(identity) in (0, 1), identity.message
    assert "cobot_security/cert_expiry/cell/arm_driver" in values(identity)["evidence"]
    for control in catalog.controls:
        if control.checks and set(control.checks) <= KEYSTORE_CHECKS and not control.attestations:
            assert level(posture[_control_name(control.id)]) in (0, 1), control.id

    # honest: the wheels have no DDS Security, so every control needing security_env fails
    for control in catalog.controls:
        if "security_env" in control.checks:
            status = posture[_control_name(control.id)]
            assert level(status) == 2 and "security_env" in status.message, control.id

    response = listener.call_trigger("/supervisor/get_report", TIMEOUT)
    assert response is not None, sup.output()
    body = report_json(response)
    assert body["malformed_messages"] == 0
    assert any(r.endswith("/health_reporter") for r in body["reporters"])


def test_killed_reporter_goes_stale_then_error(start_node, listener, healthy_keystore: Path) -> None:
    catalog = load_controls(CONTROLS)
    liveness = [c.id for c in catalog.controls if "reporter_liveness" in c.checks]
    assert liveness, "the catalog has no control on reporter_liveness"
    name = _control_name(liveness[0])
    listener.subscribe(POSTURE)
    sup, rep = _stack(start_node, healthy_keystore, stale_after_s=1.5, error_after_s=4.0)

    def liveness_level(wanted, reason_part):
        def pred(by_name):
            status = by_name.get(name)
            return status is not None and level(status) == wanted and reason_part in status.message
        return _latest_posture(listener, pred)

    assert listener.wait_for(_latest_posture(listener, lambda b: name in b and "reporter_liveness" in
                                             values(b[name])["evidence"]), TIMEOUT), sup.output()
    rep.stop(sig=9)
    stale = listener.wait_for(liveness_level(3, "no report since"), TIMEOUT)
    assert stale is not None, sup.output()
    error = listener.wait_for(liveness_level(2, "no report since"), TIMEOUT)
    assert error is not None, sup.output()


def _garbage() -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.status = [
        DiagnosticStatus(level=bytes([99]), name="cobot_security/cert_expiry/cell/arm_driver", message="x",
                         hardware_id="evil"),
        DiagnosticStatus(level=b"\x00", name="not/ours", message="x", hardware_id="evil"),
        DiagnosticStatus(level=b"\x00", name="cobot_security/crl/keystore", message="x" * 100_000,
                         hardware_id="evil"),
        DiagnosticStatus(level=b"\x00", name="cobot_security/crl/keystore", message="x", hardware_id="evil",
                         values=[KeyValue(key=f"k{i}", value="v") for i in range(300)]),
    ]
    return msg


def test_garbage_on_health_is_counted_not_fatal(start_node, listener, healthy_keystore: Path) -> None:
    listener.subscribe(POSTURE)
    sup, _ = _stack(start_node, healthy_keystore, reporter=False)
    publisher = listener.node.create_publisher(DiagnosticArray, "/cobot_security/health", 10)
    assert listener.wait_for(lambda: listener.received(POSTURE), TIMEOUT), sup.output()

    sent = threading.Event()
    count = {"n": 0}

    sender = SignedSender(healthy_keystore, host="evil")

    def send():
        publisher.publish(_garbage())  # unsigned: dropped whole
        publisher.publish(sender.array([status_record(s) for s in _garbage().status]))  # signed: statuses checked
        count["n"] += 1
        if count["n"] >= 10:
            sent.set()
    timer = listener.node.create_timer(0.1, send)
    assert sent.wait(TIMEOUT)
    listener.node.destroy_timer(timer)

    before = len(listener.received(POSTURE))
    assert listener.wait_for(lambda: len(listener.received(POSTURE)) >= before + 2, TIMEOUT), sup.output()
    assert sup.proc.poll() is None
    response = listener.call_trigger("/supervisor/get_report", TIMEOUT)
    assert response is not None, sup.output()
    body = report_json(response)
    assert body["health_intake"]["dropped_messages"]["unsigned"] >= 10
    assert body["malformed_messages"] >= 40  # the signed messages' 4 malformed statuses each, never merged
    assert body["health_intake"]["accepted_statuses"] == 0
    assert [r for r in body["reporters"] if "evil" in r] == ["evil/cobot_security/health_reporter"]


def test_critical_failure_fires_the_hooks_once(start_node, listener, healthy_keystore: Path, tmp_path: Path) -> None:
    catalog = load_controls(CONTROLS)
    attestations = tmp_path / "attestations.yaml"
    attestations.write_text("version: 1\nattestations: []\n")  # incident_response_drill missing
    listener.subscribe(POSTURE)
    listener.subscribe(ALERTS, qos=ALERTS_QOS)
    listener.subscribe("/test/safety_stop", String, qos=RESPONSE_QOS)
    calls = []
    listener.node.create_service(Trigger, "/test/stop_service", lambda req, res: (calls.append(1), setattr(
        res, "success", True), res)[-1])
    sup, rep = _stack(start_node, healthy_keystore, attestations=str(attestations), confirm_count=2,
                      response_topic="/test/safety_stop", response_service="/test/stop_service")

    first = listener.wait_for(lambda: listener.received("/test/safety_stop"), TIMEOUT)
    assert first, sup.output()
    # let several more evaluations happen, then count
    n_posture = len(listener.received(POSTURE))
    assert listener.wait_for(lambda: len(listener.received(POSTURE)) >= n_posture + 6, TIMEOUT), sup.output()

    payloads = [json.loads(m.data) for m in listener.received("/test/safety_stop")]
    controls = [p["control"] for p in payloads]
    assert "incident_response" in controls
    assert len(controls) == len(set(controls)), controls  # once per transition, not per evaluation
    critical = {c.id for c in catalog.controls if c.priority == Priority.CRITICAL}
    assert set(controls) <= critical
    assert all(p["current"] in ("ERROR", "STALE") for p in payloads)
    assert listener.wait_for(lambda: len(calls) >= len(controls), TIMEOUT)
    assert len(calls) == len(controls)
    alerts = [s for m in listener.received(ALERTS) for s in m.status]
    assert any(s.name == _control_name("incident_response") and level(s) == 2 for s in alerts)
