"""The plan loader rejects malformed plans with file:line: field errors; plan_findings judges coverage."""

from __future__ import annotations

import datetime as dt

import pytest

from cobot_security.errors import InputError
from cobot_security.incident.plan import (
    DRILL_ATTESTATION,
    load_plan,
    load_plan_text,
    plan_findings,
)
from cobot_security.posture.attestations import Attestation
from cobot_security.resources import shipped_file
from cobot_security.status import Level


def _drill(date: dt.date) -> Attestation:
    return Attestation(DRILL_ATTESTATION, "drill held", "me", date, date + dt.timedelta(days=365), "x")


def test_shipped_plan_is_valid_and_covers_critical_triggers(now) -> None:
    plan = load_plan(shipped_file("policies/incident_response.yaml"))
    [finding] = plan_findings(plan, now)
    assert finding.level == Level.OK
    assert finding.name == "cobot_security/incident_plan/plan"
    assert {p.trigger for p in plan.playbooks} >= {t for t, s in plan.severity if s == "critical"}


@pytest.mark.parametrize("old,new,match", [
    ("name: test_plan\n", "name: test_plan\nextra: 1\n", r"plan.yaml:\d+: extra: expected one of the keys"),
    ("    owner: operator\n    auto_close", "    owner: nobody\n    auto_close",
     r"plan.yaml:\d+: playbooks\[4\].owner: expected a role defined under roles"),
    ("  stale_reporter: medium\n", "", r"severity.stale_reporter: expected a severity for every trigger"),
    ("  unknown_node: critical", "  unknown_node: fatal", r"severity.unknown_node: expected one of critical"),
    ("      - action: manual\n        owner: operator\n", "      - action: manual\n",
     r"playbooks\[0\].steps\[2\].owner: expected an owner for the manual step"),
    ("      - action: keystore_revoke\n        owner: lead\n", "      - action: keystore_revoke\n",
     r"playbooks\[1\].steps\[1\].owner: expected an owner for the keystore_revoke step"),
    ("        service: /cell/stop\n", "", r"steps\[1\].service: expected the std_srvs/Trigger service"),
    ("    trigger: unknown_node", "    trigger: alien_node", r"playbooks\[0\].trigger: expected one of control_error"),
    ("  drill_max_age: 90d", "  drill_max_age: soon", r"settings.drill_max_age: expected a duration"),
    ("  - id: tamper\n", "  - id: rogue\n", r"playbooks\[1\].id: expected each playbook id once"),
    ("version: 1", "version: 2", r"version: expected version 1, got 2"),
    ("    steps: [{action: publish_stop}]\n  - id: segmentation",
     "    steps: []\n  - id: segmentation", r"playbooks\[2\].steps: expected a non-empty list of steps"),
])
def test_invalid_plans_name_file_line_and_field(plan_text: str, old: str, new: str, match: str) -> None:
    assert old in plan_text
    with pytest.raises(InputError, match=match):
        load_plan_text(plan_text.replace(old, new, 1), "plan.yaml")


def test_uncovered_critical_trigger_is_an_error(plan_text: str, now) -> None:
    text = plan_text.replace("  - id: segmentation\n    trigger: segmentation_drift\n    owner: lead\n"
                             "    steps: [{action: publish_stop}]\n", "")
    [finding] = plan_findings(load_plan_text(text, "plan.yaml"), now)
    assert finding.level == Level.ERROR
    assert "critical trigger segmentation_drift has no playbook" in finding.message


def test_lowering_the_severity_makes_the_gap_acceptable(plan_text: str, now) -> None:
    text = plan_text.replace("  - id: segmentation\n    trigger: segmentation_drift\n    owner: lead\n"
                             "    steps: [{action: publish_stop}]\n", "").replace(
        "segmentation_drift: critical", "segmentation_drift: high")
    assert plan_findings(load_plan_text(text, "plan.yaml"), now)[0].level == Level.OK


def test_drill_age_boundary(plan, now) -> None:
    # drill_max_age 90d: valid_from (date 00:00 UTC) + 90 days is the last instant that counts
    inside = now.date() - dt.timedelta(days=89)
    assert plan_findings(plan, now, [_drill(inside)])[0].level == Level.OK
    old = now.date() - dt.timedelta(days=91)
    finding = plan_findings(plan, now, [_drill(old)])[0]
    assert finding.level == Level.ERROR and "older than 90 days" in finding.message
    assert "no incident_response_drill" in plan_findings(plan, now, [])[0].message
    exact = dt.datetime.combine(now.date() - dt.timedelta(days=90), dt.time(0), tzinfo=dt.timezone.utc)
    at = exact + dt.timedelta(days=90)
    assert plan_findings(plan, at, [_drill(exact.date())])[0].level == Level.OK
    assert plan_findings(plan, at + dt.timedelta(seconds=1), [_drill(exact.date())])[0].level == Level.ERROR
