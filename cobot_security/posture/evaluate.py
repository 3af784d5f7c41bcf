"""Fold health findings and attestations into one result per control, a 0–100 score and a verdict.

Fail closed throughout: a check with no finding is ERROR ("no evidence"), a STALE finding fails,
a missing or expired attestation is ERROR, a control whose evaluation raises is ERROR naming the
control, and an empty catalog is ERROR with score 0.  ``now`` is always passed in.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass

from cobot_security.posture.attestations import Attestation
from cobot_security.posture.catalog import Control, ControlsCatalog, Priority
from cobot_security.status import Finding, Level, worst

__all__ = [
    "ATTESTATION_WARN_WITHIN",
    "ControlResult",
    "PostureReport",
    "evaluate_control",
    "evaluate_posture",
    "is_failing",
    "score_results",
]

#: An attestation expiring sooner than this (or exactly this far ahead) makes its control WARN.
ATTESTATION_WARN_WITHIN = _dt.timedelta(days=30)


def is_failing(level: Level) -> bool:
    """ERROR and STALE fail a control; OK and WARN do not."""
    return level in (Level.ERROR, Level.STALE)


@dataclass(frozen=True)
class ControlResult:
    """The verdict on one control, why, and the status names / attestation ids it rests on."""

    control_id: str
    title: str
    priority: Priority
    level: Level
    reason: str
    evidence: tuple[str, ...]
    references: tuple[str, ...]

    @property
    def status_name(self) -> str:
        """Status name on the wire: ``cobot_security/posture/<control_id>``."""
        return f"cobot_security/posture/{self.control_id}"


@dataclass(frozen=True)
class PostureReport:
    """All control results in catalog order, the priority-weighted score and the overall level."""

    results: tuple[ControlResult, ...]
    score: int
    level: Level
    evaluated_at: _dt.datetime


def _check_part(check: str, findings: Sequence[Finding]) -> tuple[Level, list[str], list[str]]:
    """(level, problems, evidence) of one check; no finding at all is ERROR (fail closed)."""
    matching = [f for f in findings if f.check == check]
    if not matching:
        return Level.ERROR, [f"no evidence for {check}"], []
    level = worst(f.level for f in matching)
    problems = [f"{f.name}: {Level(f.level).name} {f.message}".rstrip() for f in matching if f.level != Level.OK]
    return level, problems, [f.name for f in matching]


def _attestation_part(
    attestation_id: str, by_id: dict[str, Attestation], now: _dt.datetime
) -> tuple[Level, list[str], list[str]]:
    """(level, problems, evidence) of one required attestation."""
    attestation = by_id.get(attestation_id)
    if attestation is None:
        return Level.ERROR, [f"attestation {attestation_id} missing"], []
    if now < attestation.valid_from:
        return Level.ERROR, [f"attestation {attestation_id} is dated in the future ({attestation.date.isoformat()})"], [
            attestation_id
        ]
    if now >= attestation.expires_at:
        return Level.ERROR, [f"attestation {attestation_id} expired on {attestation.expires.isoformat()}"], [
            attestation_id
        ]
    if attestation.expires_at - now <= ATTESTATION_WARN_WITHIN:
        return Level.WARN, [f"attestation {attestation_id} expires on {attestation.expires.isoformat()}"], [
            attestation_id
        ]
    return Level.OK, [], [attestation_id]


def evaluate_control(
    control: Control, findings: Sequence[Finding], attestations: dict[str, Attestation], now: _dt.datetime
) -> ControlResult:
    """The result of one control: the worst of its checks and attestations.

    :raises Exception: whatever a malformed input raises; :func:`evaluate_posture` turns it into ERROR.
    """
    levels: list[Level] = []
    problems: list[str] = []
    evidence: list[str] = []
    for check in control.checks:
        level, why, used = _check_part(check, findings)
        levels.append(level)
        problems += why
        evidence += used
    for attestation_id in control.attestations:
        level, why, used = _attestation_part(attestation_id, attestations, now)
        levels.append(level)
        problems += why
        evidence += used
    if not levels:
        problems.append("control lists no checks and no attestations")
    overall = worst(levels)
    return ControlResult(
        control_id=control.id,
        title=control.title,
        priority=control.priority,
        level=overall,
        reason="; ".join(problems) if problems else "all evidence OK",
        evidence=tuple(dict.fromkeys(evidence)),
        references=control.references,
    )


def score_results(results: Sequence[ControlResult]) -> int:
    """sum(weight × credit) / sum(weight) × 100, rounded half up; credit OK 1, WARN 0.5, else 0.

    No results score 0 (fail closed).
    """
    total = sum(r.priority.weight for r in results)
    if total == 0:
        return 0
    # Credit in halves keeps the arithmetic exact: score = round(halves * 100 / (2 * total)).
    halves = sum(r.priority.weight * {Level.OK: 2, Level.WARN: 1}.get(r.level, 0) for r in results)
    return (halves * 100 + total) // (2 * total)


def evaluate_posture(
    catalog: ControlsCatalog,
    findings: Sequence[Finding],
    attestations: Sequence[Attestation],
    now: _dt.datetime,
) -> PostureReport:
    """Evaluate every control of ``catalog`` against ``findings`` and ``attestations`` at ``now``.

    Never raises for a single control: its exception becomes an ERROR result naming the control.
    """
    by_id = {a.id: a for a in attestations}
    grouped: dict[str, list[Finding]] = {}
    by_check: dict[str, list[Finding]] | None = grouped
    try:  # one pass, so a control only scans the findings of its own checks
        for finding in findings:
            grouped.setdefault(finding.check, []).append(finding)
    except Exception:  # noqa: BLE001 - a malformed finding: each control meets it (and fails) on its own
        by_check = None
    results: list[ControlResult] = []
    for control in catalog.controls:
        try:
            relevant = findings if by_check is None else [
                f for check in dict.fromkeys(control.checks) for f in by_check.get(check, ())]
            result = evaluate_control(control, relevant, by_id, now)
        except Exception as exc:  # noqa: BLE001 - fail closed: any bug in one control is that control's ERROR
            result = ControlResult(
                control_id=control.id,
                title=control.title,
                priority=control.priority,
                level=Level.ERROR,
                reason=f"control {control.id} could not be evaluated: {type(exc).__name__}: {exc}",
                evidence=(),
                references=control.references,
            )
        results.append(result)
    return PostureReport(
        results=tuple(results),
        score=score_results(results),
        level=worst(r.level for r in results),
        evaluated_at=now,
    )
