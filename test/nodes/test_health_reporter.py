"""health_reporter as a real process: keystore health on /cobot_security/health and /diagnostics."""

from __future__ import annotations

import datetime as dt
import signal
import socket
from pathlib import Path

import pytest
import rclpy
from node_helpers import WORKCELL, level, make_keystore, statuses, utc_now, values

ARM_EXPIRY = "cobot_security/cert_expiry/cell/arm_driver"
INTEGRITY = "cobot_security/keystore_integrity/keystore"
TIMEOUT = 20.0


def _reporter(start_node, keystore: Path, **extra: object):
    return start_node("health_reporter", keystore=str(keystore), policy=str(WORKCELL), period_s=0.5, **extra)


def _status_on(listener, topic: str, name: str, wanted_level: int | None = None, count: int = 1):
    """The ``count``-th status ``name`` received on ``topic`` (optionally at ``wanted_level``)."""
    def find():
        seen = [statuses(m)[name] for m in listener.received(topic) if name in statuses(m)]
        seen = [s for s in seen if wanted_level is None or level(s) == wanted_level]
        return seen[count - 1] if len(seen) >= count else None
    return listener.wait_for(find, TIMEOUT)


def test_healthy_keystore_reports_ok_on_both_topics(start_node, listener, healthy_keystore: Path) -> None:
    listener.subscribe("/cobot_security/health")
    listener.subscribe("/diagnostics")
    proc = _reporter(start_node, healthy_keystore)

    status = _status_on(listener, "/cobot_security/health", ARM_EXPIRY, count=2)
    assert status is not None, proc.output()
    assert level(status) == 0, status.message
    assert status.hardware_id == socket.gethostname()
    kv = values(status)
    assert kv["reporter"] == "/health_reporter"
    assert 88 <= int(kv["days_left"]) <= 90
    assert _status_on(listener, "/diagnostics", ARM_EXPIRY, wanted_level=0) is not None, proc.output()

    # keystore/host status names are stable from one report to the next (the graph may grow)
    health = listener.received("/cobot_security/health")
    assert len(health) >= 2

    def names(msg):
        return [s.name for s in msg.status if "/graph_conformance/" not in s.name and "/policy_drift/" not in s.name]
    assert names(health[0]) == names(health[-1])
    # signed with its policy enclave's key: the signature status comes last
    assert names(health[-1])[-1] == "cobot_security/health_signature/cobot_security/health_reporter"
    assert level(statuses(health[-1])[INTEGRITY]) == 0
    # honest about the wheels: no DDS Security in this process environment
    env = [s for s in health[-1].status if s.name.startswith("cobot_security/security_env/")]
    assert env and all(level(s) == 2 for s in env)

    # clean shutdown on SIGINT and SIGTERM: exit code 0 and no traceback
    assert proc.stop(signal.SIGTERM) == 0
    assert "Traceback" not in proc.output()


@pytest.mark.parametrize(("age_days", "expected"), [(70, 1), (91, 2)], ids=["warn_window", "expired"])
def test_certificate_age_sets_the_level(start_node, listener, tmp_path: Path, age_days: int, expected: int) -> None:
    keystore = make_keystore(tmp_path / "ks", utc_now() - dt.timedelta(days=age_days))
    listener.subscribe("/cobot_security/health")
    proc = _reporter(start_node, keystore)

    status = _status_on(listener, "/cobot_security/health", ARM_EXPIRY)
    assert status is not None, proc.output()
    assert level(status) == expected, status.message
    if expected == 1:
        assert 19 <= int(values(status)["days_left"]) <= 20


def test_tampered_artifact_is_an_integrity_error(start_node, listener, tmp_path: Path) -> None:
    keystore = make_keystore(tmp_path / "ks", utc_now())
    permissions = keystore / "enclaves" / "cell" / "arm_driver" / "permissions.xml"
    permissions.write_bytes(permissions.read_bytes().replace(b"</permissions>", b"<!-- x --></permissions>"))
    listener.subscribe("/cobot_security/health")
    proc = _reporter(start_node, keystore)

    status = _status_on(listener, "/cobot_security/health", INTEGRITY)
    assert status is not None, proc.output()
    assert level(status) == 2
    assert "permissions.xml" in status.message or values(status).get("modified") == "1", status.message


@pytest.mark.parametrize(("name", "namespace", "subject"), [
    ("intruder", "/cell", "cell/intruder"),
    # Named like launch_ros' own node: the launch-side listener is a declared node (issue 14 #5), so
    # nothing named like a launch node is let through.
    ("launch_ros_4242", "/", "launch_ros_4242"),
], ids=["intruder", "launch_like_name"])
def test_node_absent_from_policy_is_a_graph_error(start_node, listener, healthy_keystore: Path, name: str,
                                                  namespace: str, subject: str) -> None:
    intruder = rclpy.create_node(name, namespace=namespace, context=listener.context)
    listener.executor.add_node(intruder)
    listener.subscribe("/cobot_security/health")
    proc = _reporter(start_node, healthy_keystore)

    status = _status_on(listener, "/cobot_security/health", f"cobot_security/graph_conformance/{subject}")
    assert status is not None, proc.output()
    assert level(status) == 2
    assert "not in the policy" in status.message


def test_unloadable_policy_is_one_error_status(start_node, listener, healthy_keystore: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nbogus: [\n")
    listener.subscribe("/cobot_security/health")
    proc = start_node("health_reporter", keystore=str(healthy_keystore), policy=str(bad), period_s=0.5)

    msg = listener.wait_for(lambda: next(iter(listener.received("/cobot_security/health")), None), TIMEOUT)
    assert msg is not None, proc.output()
    assert len(msg.status) == 2
    assert level(msg.status[0]) == 2
    assert msg.status[0].name.startswith("cobot_security/reporter_config/")
    assert "bad.yaml" in msg.status[0].message
    # without a policy (and no --enclave) it cannot tell its enclave: it says so, unsigned
    assert msg.status[1].name.startswith("cobot_security/health_signing/") and level(msg.status[1]) == 2
    assert "no enclave for node /health_reporter" in msg.status[1].message
    assert proc.proc.poll() is None, "the reporter must keep running"


def test_bad_parameter_exits_2_with_one_line(start_node, healthy_keystore: Path) -> None:
    proc = start_node("health_reporter", keystore=str(healthy_keystore), period_s=-1.0)
    assert proc.proc.wait(timeout=TIMEOUT) == 2
    output = proc.output()
    assert "period_s: expected a positive number of seconds, got -1.0" in output
    assert "Traceback" not in output
