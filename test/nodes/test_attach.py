"""attach_health_reporting: a user's node reports its own enclave's keystore health."""

from __future__ import annotations

import socket
from pathlib import Path

import rclpy
from node_helpers import WORKCELL, level, values

from cobot_security.nodes.attach import attach_health_reporting

TIMEOUT = 20.0


def test_attached_node_reports_only_its_enclave_signed(listener, healthy_keystore: Path) -> None:
    listener.subscribe("/cobot_security/health")
    listener.subscribe("/diagnostics")
    arm = rclpy.create_node("arm_driver", namespace="/cell", context=listener.context)
    listener.executor.add_node(arm)
    handle = attach_health_reporting(arm, "/cell/arm_driver", healthy_keystore, WORKCELL, period_s=0.3)
    try:
        msg = listener.wait_for(lambda: next(iter(listener.received("/cobot_security/health")), None), TIMEOUT)
        assert msg is not None
        names = [s.name for s in msg.status]
        assert "cobot_security/cert_expiry/cell/arm_driver" in names
        assert "cobot_security/security_env/cell/arm_driver" in names  # its own process environment
        assert "cobot_security/keystore_integrity/keystore" not in names  # the host reporter's subject
        assert not any("/cell/gripper" in n for n in names), names
        assert not any("/graph_conformance/" in n for n in names), names
        for status in msg.status[:-1]:
            assert values(status)["reporter"] == "/cell/arm_driver"
            assert status.hardware_id == socket.gethostname()
        signature = values(msg.status[-1])
        assert names[-1] == "cobot_security/health_signature/cell/arm_driver"
        assert signature["reporter"] == "/cell/arm_driver" and signature["node"] == "/cell/arm_driver"
        assert int(signature["seq"]) > 0 and signature["signature"]
        expiry = next(s for s in msg.status if s.name == "cobot_security/cert_expiry/cell/arm_driver")
        assert level(expiry) == 0
        assert listener.wait_for(lambda: listener.received("/diagnostics"), TIMEOUT)
    finally:
        handle.detach()
    assert handle.timer is None and handle.publishers == ()
