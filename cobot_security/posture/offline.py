"""The posture without ROS: keystore/environment/stored-scan evidence plus the incident plan, evaluated.

One composition for every offline consumer (the ``posture`` CLI, CI gates), so they cannot drift
from what the supervisor evaluates online.  Graph evidence is absent offline, so graph-based checks
fail closed.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from pathlib import Path

from cobot_security.health.reporter import collect_offline_findings
from cobot_security.incident.plan import check_plan_file
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.posture.attestations import Attestation
from cobot_security.posture.catalog import ControlsCatalog
from cobot_security.posture.evaluate import PostureReport, evaluate_posture


def evaluate_offline(
    catalog: ControlsCatalog,
    attestations: tuple[Attestation, ...],
    policy: WorkcellPolicy,
    keystore: Path,
    incident_plan: Path,
    now: _dt.datetime,
    environ: Mapping[str, str],
    uid: int,
    host: str,
) -> PostureReport:
    """Collect the offline evidence and evaluate every control of ``catalog`` at ``now``."""
    findings = collect_offline_findings(keystore, policy, now, environ, uid, host)
    findings += check_plan_file(incident_plan, now, attestations)[1]
    return evaluate_posture(catalog, findings, attestations, now)
