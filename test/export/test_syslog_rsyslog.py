"""RFC 5424 events reach a real rsyslogd on loopback with their structured data (UDP, TCP, unix)."""

from __future__ import annotations

import socket

import pytest
from export_builders import NOW, audit_record, report, transition
from rsyslog_daemon import Rsyslog, free_port

from cobot_security.export.syslog import (
    SyslogSender,
    SyslogTarget,
    alert_event,
    audit_event,
    incident_event,
    posture_event,
)
from cobot_security.status import Level


def _target(daemon: Rsyslog, scheme: str) -> SyslogTarget:
    if scheme == "unix":
        return SyslogTarget("unix", path=str(daemon.unix_path))
    return SyslogTarget(scheme, "127.0.0.1", daemon.udp_port if scheme == "udp" else daemon.tcp_port)


@pytest.mark.parametrize("scheme", ["udp", "tcp", "unix"])
def test_events_arrive_with_structured_data(rsyslog: Rsyslog, scheme: str) -> None:
    sender = SyslogSender(_target(rsyslog, scheme), "cell-pc", procid="77")
    try:
        assert sender.send(alert_event(transition(Level.ERROR), critical=True), NOW)
        assert sender.send(incident_event("INC-1", "opened", Level.ERROR, "rogue node",
                                          {"trigger": "unknown_node", "enclave": "/cell/rogue"}), NOW)
        assert sender.send(audit_event(audit_record()), NOW)
        assert sender.send(posture_event(report(keys=Level.ERROR)), NOW)
        assert sender.flush(10)
    finally:
        sender.close()
    got = {r["msgid"]: r for r in rsyslog.wait_for(lambda r: r["appname"] == "cobot_security", count=4)}
    assert set(got) == {"alert", "incident", "audit", "posture"}, rsyslog.records()
    alert = got["alert"]
    assert (alert["facility"], alert["severity"], alert["hostname"]) == ("local4", "2", "cell-pc")
    assert alert["sd"].startswith('[cobot@32473 control="cert_lifetime" priority="critical" level="ERROR"')
    assert alert["msg"].startswith("cert_lifetime NEW -> ERROR")
    assert got["incident"]["sd"] == ('[cobot@32473 incident="INC-1" action="opened" level="ERROR" '
                                     'enclave="/cell/rogue" trigger="unknown_node"]')
    # rsyslog keeps the RFC 5424 escapes of ", \ and ] inside PARAM-VALUE as sent.
    assert 'd_reason="key \\"compromised\\"\\] \\\\ now"' in got["audit"]["sd"]
    assert got["audit"]["severity"] == "5"
    assert 'failing="key_protection"' in got["posture"]["sd"]
    assert (sender.sent, sender.dropped) == (4, 0)


def test_tcp_octet_counting_keeps_messages_apart(rsyslog: Rsyslog) -> None:
    """Messages with embedded newlines stay one record each: framing is by length, not LF."""
    sender = SyslogSender(_target(rsyslog, "tcp"), "cell-pc")
    try:
        for i in range(20):
            sender.send(incident_event(f"INC-{i}", "action", Level.WARN, f"step {i}\nsecond line"), NOW)
        assert sender.flush(10)
    finally:
        sender.close()
    rows = rsyslog.wait_for(lambda r: r["msgid"] == "incident", count=20)
    assert sorted(r["sd"].split('"')[1] for r in rows) == sorted(f"INC-{i}" for i in range(20))


def test_unreachable_target_never_raises_and_counts_drops() -> None:
    port = free_port(socket.SOCK_STREAM)  # nothing listens there
    sender = SyslogSender(SyslogTarget("tcp", "127.0.0.1", port), "h", queue_size=2, connect_timeout_s=0.5)
    try:
        results = [sender.send(alert_event(transition()), NOW) for _ in range(50)]
        assert sender.flush(10)
    finally:
        sender.close()
    assert sender.sent == 0
    assert sender.dropped == 50
    assert results.count(False) >= 1  # the bounded queue refused some instead of blocking
    assert "127.0.0.1" in sender.last_error
