"""keystore_manager as a real process: due certificates reported, rotated on request or automatically."""

from __future__ import annotations

import datetime as dt
import json
import signal
from pathlib import Path

import node_helpers
import pytest
from cryptography import x509
from node_helpers import WORKCELL, level, make_keystore, statuses, utc_now, values

ARM = "/cell/arm_driver"
ARM_ROTATION = "cobot_security/cert_rotation/cell/arm_driver"
ARM_RESTART = "cobot_security/restart_required/cell/arm_driver"
MANAGER = "cobot_security/keystore_manager/keystore"
HEALTH = "/cobot_security/health"
TIMEOUT = 20.0


@pytest.fixture(autouse=True)
def _module_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the console script installed, start the node with ``python -m``."""
    monkeypatch.setitem(node_helpers._MODULES, "keystore_manager", "cobot_security.nodes.keystore_manager")


@pytest.fixture
def due_keystore(tmp_path: Path) -> Path:
    """The example policy's keystore issued 70 days ago: 20 days left, inside the 30-day renew window."""
    return make_keystore(tmp_path / "ks", utc_now() - dt.timedelta(days=70))


def _manager(start_node, keystore: Path, **extra: object):
    params: dict[str, object] = {"keystore": str(keystore), "policy": str(WORKCELL), "period_s": 0.5,
                                 "check_period_s": 60.0}
    params.update(extra)
    return start_node("keystore_manager", **params)


def _status(listener, name: str, predicate=lambda s: True):
    """The first status ``name`` on the health topic satisfying ``predicate``, waiting at most TIMEOUT."""
    def find():
        for msg in listener.received(HEALTH):
            status = statuses(msg).get(name)
            if status is not None and predicate(status):
                return status
        return None
    return listener.wait_for(find, TIMEOUT)


def _not_after(keystore: Path) -> dt.datetime:
    cert = x509.load_pem_x509_certificate((keystore / "enclaves" / "cell" / "arm_driver" / "cert.pem").read_bytes())
    return cert.not_valid_after_utc


def test_due_certificate_is_reported_and_rotated_on_request(start_node, listener, due_keystore: Path) -> None:
    listener.subscribe(HEALTH)
    listener.subscribe("/diagnostics")
    old_cert = (due_keystore / "enclaves" / "cell" / "arm_driver" / "cert.pem").read_bytes()
    old_not_after = _not_after(due_keystore)
    proc = _manager(start_node, due_keystore)

    due = _status(listener, ARM_ROTATION)
    assert due is not None, proc.output()
    assert level(due) == 1, due.message
    kv = values(due)
    assert kv["state"] == "due" and kv["enclave"] == ARM
    assert 19 <= int(kv["days_left"]) <= 20
    assert dt.datetime.fromisoformat(kv["not_after"]) == old_not_after
    assert kv["reporter"] == "/keystore_manager"
    diag = listener.wait_for(lambda: any(ARM_ROTATION in statuses(m) for m in listener.received("/diagnostics")),
                             TIMEOUT)
    assert diag, proc.output()
    # not rotated without auto_rotate or the service
    assert (due_keystore / "enclaves" / "cell" / "arm_driver" / "cert.pem").read_bytes() == old_cert

    status = listener.call_trigger("/keystore_manager/get_status", TIMEOUT)
    assert status is not None and status.success, proc.output()
    plan = json.loads(status.message)
    assert {"kind": "rotate", "enclave": ARM, "reason": "due"} in plan["actions"]

    response = listener.call_trigger("/keystore_manager/rotate_due", TIMEOUT)
    assert response is not None, proc.output()
    assert response.success, response.message
    assert ARM in json.loads(response.message)
    assert (due_keystore / "enclaves" / "cell" / "arm_driver" / "cert.pem").read_bytes() != old_cert
    assert _not_after(due_keystore) > old_not_after + dt.timedelta(days=60)

    restart = _status(listener, ARM_RESTART)
    assert restart is not None, proc.output()
    assert level(restart) == 1
    assert values(restart)["enclave"] == ARM
    assert values(restart)["nodes"] == "/cell/arm_driver"
    rotated = _status(listener, ARM_ROTATION, lambda s: values(s)["state"] == "rotated")
    assert rotated is not None and level(rotated) == 0, proc.output()
    assert 89 <= int(values(rotated)["days_left"]) <= 90

    assert proc.stop(signal.SIGTERM) == 0
    assert "Traceback" not in proc.output()


def test_auto_rotate_rotates_without_the_service(start_node, listener, due_keystore: Path) -> None:
    listener.subscribe(HEALTH)
    old_not_after = _not_after(due_keystore)
    proc = _manager(start_node, due_keystore, auto_rotate=True, check_period_s=1.0)

    restart = _status(listener, ARM_RESTART)
    assert restart is not None, proc.output()
    assert values(restart)["nodes"] == "/cell/arm_driver"
    assert _not_after(due_keystore) > old_not_after + dt.timedelta(days=60)
    ok = _status(listener, ARM_ROTATION, lambda s: level(s) == 0)
    assert ok is not None, proc.output()
    assert proc.stop(signal.SIGINT) == 0
    assert "Traceback" not in proc.output()


def test_bad_keystore_is_an_error_status_not_a_crash(start_node, listener, tmp_path: Path) -> None:
    listener.subscribe(HEALTH)
    proc = _manager(start_node, tmp_path / "no_keystore", check_period_s=0.5)

    error = _status(listener, MANAGER, lambda s: level(s) == 2)
    assert error is not None, proc.output()
    assert "no_keystore" in error.message
    response = listener.call_trigger("/keystore_manager/rotate_due", TIMEOUT)
    assert response is not None and not response.success
    assert proc.proc.poll() is None, "the manager must keep running"
