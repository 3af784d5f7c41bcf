"""The posture without ROS: keystore/environment/stored-scan evidence plus the caller's extra findings, evaluated.

One composition for every offline consumer (the ``posture`` CLI, CI gates), so they cannot drift
from what the supervisor evaluates online.  Graph evidence is absent offline, so graph-based checks
fail closed.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from pathlib import Path

from cobot_security.health.reporter import collect_offline_findings
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.posture.attestations import Attestation
from cobot_security.posture.catalog import ControlsCatalog
from cobot_security.posture.evaluate import PostureReport, evaluate_posture
from cobot_security.status import Finding


def evaluate_offline(
    catalog: ControlsCatalog,
    attestations: tuple[Attestation, ...],
    policy: WorkcellPolicy,
    keystore: Path,
    extra_findings: Sequence[Finding],
    now: _dt.datetime,
    environ: Mapping[str, str],
    uid: int,
    host: str,
) -> PostureReport:
    """Collect the offline evidence and evaluate every control of ``catalog`` at ``now``.

    ``extra_findings`` are evidence the caller gathered itself (the incident plan check), so that
    posture never depends on the rooms above it.
    """
    findings = collect_offline_findings(keystore, policy, now, environ, uid, host)
    findings += list(extra_findings)
    return evaluate_posture(catalog, findings, attestations, now)
