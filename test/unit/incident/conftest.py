"""Incident test fixtures: a small valid plan text, a store in tmp_path, posture results."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cobot_security.incident.incidents import IncidentStore
from cobot_security.incident.plan import IncidentPlan, load_plan_text

PLAN = """\
version: 1
name: test_plan
roles:
  lead: {name: "Lead", contact: "lead@example.invalid"}
  operator: {name: "Operator", contact: "op@example.invalid"}
severity:
  control_error: high
  unknown_node: critical
  integrity_violation: critical
  revoked_identity_seen: critical
  segmentation_drift: critical
  stale_reporter: medium
settings:
  stop_topic: /cell/safety_stop
  drill_max_age: 90d
  rate_limit: {per_incident: 3, global: 4, window: 10m}
  max_attempts: 2
playbooks:
  - id: rogue
    trigger: unknown_node
    owner: lead
    steps:
      - action: publish_stop
      - action: call_trigger
        service: /cell/stop
      - action: manual
        owner: operator
        description: "find the host"
  - id: tamper
    trigger: integrity_violation
    owner: lead
    steps:
      - action: snapshot_evidence
      - action: keystore_revoke
        owner: lead
  - id: revoked
    trigger: revoked_identity_seen
    owner: lead
    steps: [{action: publish_stop}]
  - id: segmentation
    trigger: segmentation_drift
    owner: lead
    steps: [{action: publish_stop}]
  - id: silent
    trigger: stale_reporter
    owner: operator
    auto_close: true
    steps: [{action: snapshot_evidence}]
  - id: controls
    trigger: control_error
    controls: [per_node_identity]
    owner: lead
    auto_close: true
    steps: [{action: keystore_rotate}]
"""


@pytest.fixture
def plan_text() -> str:
    """The text of a valid plan covering every critical trigger."""
    return PLAN


@pytest.fixture
def plan() -> IncidentPlan:
    """The loaded test plan."""
    return load_plan_text(PLAN, "plan.yaml")


@pytest.fixture
def store(tmp_path: Path) -> IncidentStore:
    """An empty incident store."""
    return IncidentStore(tmp_path / "incidents")


@pytest.fixture
def now() -> dt.datetime:
    """Frozen time."""
    return dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.timezone.utc)
