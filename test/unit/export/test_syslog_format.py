"""RFC 5424 formatting, SD escaping, PRI, framing and target parsing (pure: no sockets)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from export_builders import NOW, audit_record, report, transition

from cobot_security.errors import InputError
from cobot_security.export.syslog import (
    MAX_MESSAGE_BYTES,
    SyslogEvent,
    SyslogTarget,
    alert_event,
    audit_event,
    escape_param_value,
    format_message,
    frame_octet_counted,
    incident_event,
    parse_syslog_target,
    posture_event,
    severity_for,
)
from cobot_security.status import Level

# RFC 5424 §6 HEADER up to STRUCTURED-DATA, one SD-ELEMENT.
_RFC5424 = re.compile(
    r'^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>\S+) (?P<app>\S+) '
    r'(?P<procid>\S+) (?P<msgid>\S+) (?P<sd>\[(?:[^\]\\]|\\.)*\])(?: (?P<msg>.*))?$', re.S)


def _parse(raw: bytes) -> re.Match[str]:
    match = _RFC5424.match(raw.decode("utf-8"))
    assert match is not None, raw
    return match


def test_header_fields_and_pri() -> None:
    event = SyslogEvent("alert", 3, "cert_lifetime OK -> ERROR", (("control", "cert_lifetime"),))
    m = _parse(format_message(event, "cell-pc", NOW, procid="42"))
    assert int(m["pri"]) == 20 * 8 + 3  # local4.err
    assert m["ts"] == "2026-11-29T12:00:00.000000Z"
    assert (m["host"], m["app"], m["procid"], m["msgid"]) == ("cell-pc", "cobot_security", "42", "alert")
    assert m["sd"] == '[cobot@32473 control="cert_lifetime"]'
    assert m["msg"] == "cert_lifetime OK -> ERROR"


def test_facility_and_enterprise_are_configurable() -> None:
    event = SyslogEvent("audit", 5, "x")
    m = _parse(format_message(event, "h", NOW, facility="auth", enterprise=99999))
    assert int(m["pri"]) == 4 * 8 + 5
    assert m["sd"] == "[cobot@99999]"


def test_param_value_escaping() -> None:
    assert escape_param_value('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    event = SyslogEvent("incident", 2, "m", (("reason", 'say "hi"] \\o/'), ("bad name=x", "v")))
    m = _parse(format_message(event, "h", NOW))
    assert m["sd"] == '[cobot@32473 reason="say \\"hi\\"\\] \\\\o/" bad_name_x="v"]'


def test_header_fields_never_contain_spaces_and_nil_when_empty() -> None:
    m = _parse(format_message(SyslogEvent("posture", 6, ""), "my host", NOW, procid=""))
    assert m["host"] == "my_host"
    assert m["procid"] == "-"
    assert m["msg"] is None


def test_non_utc_time_is_converted() -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    m = _parse(format_message(SyslogEvent("alert", 6, "x"), "h", dt.datetime(2026, 1, 1, 1, 0, 0, 5, tzinfo=cet)))
    assert m["ts"] == "2026-01-01T00:00:00.000005Z"


def test_long_message_is_truncated_but_keeps_sd() -> None:
    raw = format_message(SyslogEvent("alert", 3, "é" * 10_000, (("control", "c"),)), "h", NOW)
    assert len(raw) <= MAX_MESSAGE_BYTES
    assert _parse(raw)["sd"] == '[cobot@32473 control="c"]'


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"facility": "local9"}, "facility"),
    ({"msgid": "hello"}, "msgid"),
    ({"severity": 8}, "severity"),
])
def test_bad_inputs_raise_input_error(kwargs: dict[str, object], field: str) -> None:
    event = SyslogEvent(str(kwargs.get("msgid", "alert")), int(kwargs.get("severity", 3)), "x")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=field):
        format_message(event, "h", NOW, facility=str(kwargs.get("facility", "local4")))


def test_naive_time_is_refused() -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        format_message(SyslogEvent("alert", 3, "x"), "h", dt.datetime(2026, 1, 1))


def test_octet_counting_frame() -> None:
    assert frame_octet_counted("é".encode()) == b"2 \xc3\xa9"


def test_severity_mapping() -> None:
    assert [severity_for(lv) for lv in Level] == [6, 4, 3, 3]
    assert severity_for(Level.ERROR, critical=True) == 2
    assert severity_for(Level.OK, critical=True) == 6


@pytest.mark.parametrize(("text", "target"), [
    ("", None),
    ("  ", None),
    ("udp://127.0.0.1:5514", SyslogTarget("udp", "127.0.0.1", 5514)),
    ("tcp://siem.plant.local", SyslogTarget("tcp", "siem.plant.local", 514)),
    ("unix:///dev/log", SyslogTarget("unix", path="/dev/log")),
])
def test_parse_target(text: str, target: SyslogTarget | None) -> None:
    assert parse_syslog_target(text) == target


@pytest.mark.parametrize("text", ["http://x:1", "udp://:514", "udp://h:99999", "unix://relative", "/dev/log"])
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(InputError, match="syslog_target"):
        parse_syslog_target(text)


def test_alert_event_from_transition() -> None:
    event = alert_event(transition(Level.ERROR), critical=True)
    params = dict(event.params)
    assert (event.msgid, event.severity) == ("alert", 2)
    assert params["control"] == "cert_lifetime"
    assert params["priority"] == "critical"
    assert params["level"] == "ERROR"
    assert "previous" not in params  # first evaluation: no previous level
    assert event.message.startswith("cert_lifetime NEW -> ERROR")


def test_posture_event_lists_failing_controls() -> None:
    event = posture_event(report(keys=Level.ERROR))
    params = dict(event.params)
    assert (event.msgid, event.severity) == ("posture", 3)
    assert params["failing"] == "key_protection"
    assert params["level"] == "ERROR"
    assert event.time == NOW


def test_audit_event_carries_the_record_but_no_key_material() -> None:
    event = audit_event(audit_record())
    params = dict(event.params)
    assert (event.msgid, event.severity) == ("audit", 5)
    assert (params["seq"], params["event"], params["enclave"], params["d_serial"]) == ("3", "revoke", "/cell/arm",
                                                                                       "0x1f")
    assert params["mac"] == "b" * 64


def test_incident_event() -> None:
    event = incident_event("INC-7", "opened", Level.ERROR, "node /rogue not in policy",
                           {"trigger": "unknown_node", "enclave": "/cell/rogue", "host": None})
    assert (event.msgid, event.severity) == ("incident", 2)
    assert dict(event.params) == {"incident": "INC-7", "action": "opened", "level": "ERROR",
                                  "enclave": "/cell/rogue", "trigger": "unknown_node"}
