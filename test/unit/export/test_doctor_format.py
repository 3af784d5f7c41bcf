"""ros2doctor plugin formatting and verdicts, fed a report without ROS (ros2doctor not needed)."""

from __future__ import annotations

import json

import pytest
from export_builders import report

from cobot_security.errors import InputError
from cobot_security.export import doctor
from cobot_security.posture.evaluate import PostureReport
from cobot_security.posture.report import render_report
from cobot_security.status import Level


def test_items_show_score_level_and_each_control() -> None:
    rep = report(keys=Level.WARN)
    items = dict(doctor.posture_report_items(rep))
    assert items["score"] == f"{rep.score}/100"
    assert items["level"] == "WARN"
    assert items["cert_lifetime"] == "OK (critical)"
    assert items["key_protection"] == "WARN (high)"


def test_unavailable_report_is_one_item_and_one_error() -> None:
    assert doctor.posture_report_items(None, "timeout") == [("posture", "unavailable: timeout")]
    errors, warnings = doctor.posture_problems(None, "timeout")
    assert len(errors) == 1 and "timeout" in errors[0]
    assert warnings == []


def test_error_posture_fails_warn_posture_only_warns() -> None:
    errors, warnings = doctor.posture_problems(report(cert_level=Level.ERROR, keys=Level.WARN))
    assert [e.split()[0] for e in errors] == ["cert_lifetime"]
    assert [w.split()[0] for w in warnings] == ["key_protection"]
    errors, warnings = doctor.posture_problems(report(keys=Level.WARN))
    assert errors == []
    assert len(warnings) == 1


def test_empty_error_report_still_fails() -> None:
    empty = PostureReport(results=(), score=0, level=Level.ERROR, evaluated_at=report().evaluated_at)
    errors, _ = doctor.posture_problems(empty)
    assert errors == ["posture ERROR (score 0/100)"]


def test_parse_report_message_roundtrip_of_supervisor_json() -> None:
    rep = report(keys=Level.ERROR)
    body = json.loads(render_report(rep, "json"))
    body["malformed_messages"] = 0  # the supervisor adds its own keys
    assert doctor.parse_report_message(json.dumps(body)) == rep


@pytest.mark.parametrize("message", ["not json", "[]", '{"error": "boom"}'])
def test_parse_report_message_rejects(message: str) -> None:
    with pytest.raises(InputError, match="posture report"):
        doctor.parse_report_message(message)
