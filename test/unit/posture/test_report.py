"""Every report format parses, and exit_code_for honours --fail-on."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from lxml import etree

from cobot_security.errors import InputError
from cobot_security.posture.catalog import Priority
from cobot_security.posture.evaluate import ControlResult, PostureReport
from cobot_security.posture.report import FORMATS, exit_code_for, render_report
from cobot_security.status import Level

NOW = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.timezone.utc)


def _report(*levels: tuple[Priority, Level]) -> PostureReport:
    results = tuple(
        ControlResult(f"c{i}_{p.value}", f"Title | {i}", p, lv, f"reason <{i}> & \"q\"", ("ev",),
                      ("IEC 62443-3-3 SR 1.2",))
        for i, (p, lv) in enumerate(levels)
    )
    return PostureReport(results, 42, max((r.level for r in results), default=Level.ERROR), NOW)


MIXED = _report(
    (Priority.CRITICAL, Level.OK), (Priority.HIGH, Level.WARN), (Priority.MEDIUM, Level.ERROR), (Priority.LOW,
                                                                                                 Level.STALE)
)


def test_json() -> None:
    data = json.loads(render_report(MIXED, "json"))
    assert data["score"] == 42
    assert [c["level"] for c in data["controls"]] == ["OK", "WARN", "ERROR", "STALE"]
    assert data["controls"][0]["name"] == "cobot_security/posture/c0_critical"
    assert data["evaluated_at"] == "2026-11-29T12:00:00+00:00"


def test_junit() -> None:
    root = etree.fromstring(render_report(MIXED, "junit").encode("utf-8"))
    suite = root.find("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "2"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["c0_critical", "c1_high", "c2_medium", "c3_low"]
    assert cases[0].find("failure") is None and cases[0].find("system-out") is None
    assert cases[1].find("failure") is None and "WARN" in cases[1].find("system-out").text
    assert cases[1].find("skipped") is None
    assert cases[2].find("failure").get("type") == "ERROR"
    assert cases[3].find("failure").get("type") == "STALE"
    assert cases[2].find("failure").get("message") == 'reason <2> & "q"'


def test_sarif() -> None:
    doc = json.loads(render_report(MIXED, "sarif"))
    assert doc["version"] == "2.1.0" and "$schema" in doc
    run = doc["runs"][0]
    assert run["tool"]["driver"]["name"] == "cobot-security"
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {r.control_id for r in MIXED.results}
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [
        ("c1_high", "warning"), ("c2_medium", "error"), ("c3_low", "error")
    ]
    assert all("text" in r["message"] for r in run["results"])


def test_table_aligned() -> None:
    lines = render_report(MIXED, "table").splitlines()
    level_col = lines[0].index("LEVEL")
    for line in lines[1:5]:
        assert line[level_col:].split()[0] in {"OK", "WARN", "ERROR", "STALE"}
    assert "score 42/100" in lines[-1]


def test_markdown_escapes_pipes() -> None:
    lines = render_report(MIXED, "markdown").splitlines()
    rows = [line for line in lines if line.startswith("| c")]
    assert len(rows) == 4
    for row in rows:
        assert row.replace("\\|", "").count("|") == 6


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_empty_report(fmt: str) -> None:
    assert render_report(PostureReport((), 0, Level.ERROR, NOW), fmt)


def test_unknown_format() -> None:
    with pytest.raises(InputError, match="format: expected one of table, json"):
        render_report(MIXED, "yaml")


@pytest.mark.parametrize(
    ("fail_on", "code"),
    [(None, 0), (Priority.CRITICAL, 0), (Priority.HIGH, 0), (Priority.MEDIUM, 1), (Priority.LOW, 1)],
)
def test_exit_code_for(fail_on: Priority | None, code: int) -> None:
    assert exit_code_for(MIXED, fail_on) == code


def test_exit_code_stale_critical_and_empty() -> None:
    report = _report((Priority.CRITICAL, Level.STALE))
    assert exit_code_for(report, Priority.CRITICAL) == 1
    assert exit_code_for(report, Priority.LOW) == 1
    assert exit_code_for(_report((Priority.HIGH, Level.WARN)), Priority.LOW) == 0
    assert exit_code_for(PostureReport((), 0, Level.ERROR, NOW), Priority.LOW) == 1
