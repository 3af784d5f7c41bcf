"""Finding <-> DiagnosticStatus conversion, including hostile incoming statuses (no processes)."""

from __future__ import annotations

import datetime as dt

import pytest
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from cobot_security.nodes import convert  # noqa: E402
from cobot_security.status import Finding, Level  # noqa: E402

FINDING = Finding("cert_expiry", "/cell/arm_driver", Level.WARN, "20 days left",
                  (("enclave", "/cell/arm_driver"), ("days_left", "20")))


def test_finding_round_trips_and_carries_reporter() -> None:
    status = convert.finding_to_status(FINDING, "cellpc", "/health_reporter")
    assert status.name == "cobot_security/cert_expiry/cell/arm_driver"
    assert status.level == b"\x01"
    assert status.hardware_id == "cellpc"
    assert {kv.key: kv.value for kv in status.values}["reporter"] == "/health_reporter"
    assert convert.status_to_finding(status) == FINDING
    assert convert.status_record(status) == convert.finding_record(FINDING, "cellpc", "/health_reporter")


def test_array_is_stamped() -> None:
    now = dt.datetime(2026, 11, 29, 12, 0, 0, 500000, tzinfo=dt.timezone.utc)
    msg = convert.records_to_array([convert.finding_record(FINDING, "h", "/r")], now)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (int(now.timestamp()), 500_000_000)
    assert len(msg.status) == 1


def _status(**kw: object) -> DiagnosticStatus:
    base = dict(level=b"\x00", name="cobot_security/crl/keystore", message="ok", hardware_id="h", values=[])
    base.update(kw)
    return DiagnosticStatus(**base)


@pytest.mark.parametrize("status", [
    _status(level=bytes([99])),
    _status(name="robot/arm/status"),
    _status(name="cobot_security/"),
    _status(name="cobot_security/Bad-Check/x"),
    _status(message="x" * 5000),
    _status(hardware_id="h" * 5000),
    _status(values=[KeyValue(key="k", value="v" * 5000)]),
    _status(values=[KeyValue(key=f"k{i}", value="v") for i in range(257)]),
    _status(values=[KeyValue(key="Not Snake", value="v")]),
    _status(name="cobot_security/crl\n/keystore"),
    _status(values=[KeyValue(key="enclave\n", value="v")]),
], ids=["level", "foreign", "empty", "check", "message", "hardware", "value", "count", "key", "check-newline",
        "key-newline"])
def test_hostile_statuses_are_rejected_not_raised(status: DiagnosticStatus) -> None:
    assert convert.status_to_finding(status) is None


def test_valid_limits_are_accepted() -> None:
    status = _status(message="x" * 4096, values=[KeyValue(key=f"k{i}", value="v") for i in range(256)])
    assert convert.status_to_finding(status) is not None
