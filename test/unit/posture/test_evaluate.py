"""Evaluation boundaries, fail-closed rules and score arithmetic."""

from __future__ import annotations

import datetime as dt

import pytest
from posture_builders import attestation, catalog, control, finding

from cobot_security.posture.catalog import Priority
from cobot_security.posture.evaluate import (
    ControlResult,
    evaluate_posture,
    score_results,
)
from cobot_security.status import Finding, Level

NOW = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.timezone.utc)


def _one(ctl, findings=(), attestations=()) -> ControlResult:  # type: ignore[no-untyped-def]
    (result,) = evaluate_posture(catalog(ctl), list(findings), list(attestations), NOW).results
    return result


def test_missing_evidence_is_error() -> None:
    result = _one(control("c", checks=("cert_expiry", "crl")), [finding("cert_expiry")])
    assert result.level == Level.ERROR
    assert result.reason == "no evidence for crl"
    assert result.evidence == ("cobot_security/cert_expiry/cell/arm",)


def test_all_ok() -> None:
    result = _one(control("c", checks=("cert_expiry",)), [finding("cert_expiry"), finding("crl", Level.ERROR)])
    assert result.level == Level.OK
    assert result.reason == "all evidence OK"


@pytest.mark.parametrize("bad", [Level.STALE, Level.ERROR])
def test_stale_or_error_finding_fails(bad: Level) -> None:
    findings = [finding("cert_expiry"), finding("cert_expiry", bad, subject="/cell/gripper")]
    result = _one(control("c", checks=("cert_expiry",)), findings)
    assert result.level == bad
    assert "cobot_security/cert_expiry/cell/gripper" in result.reason


def test_stale_is_worse_than_error() -> None:
    findings = [finding("crl", Level.ERROR), finding("cert_expiry", Level.STALE)]
    assert _one(control("c", checks=("cert_expiry", "crl")), findings).level == Level.STALE


def test_warn_finding_warns() -> None:
    assert _one(control("c", checks=("crl",)), [finding("crl", Level.WARN)]).level == Level.WARN


def test_missing_attestation_is_error() -> None:
    result = _one(control("c", attestations=("hmi_mfa",)))
    assert result.level == Level.ERROR
    assert result.reason == "attestation hmi_mfa missing"


EXP = dt.date(2026, 11, 29)  # expires_at 2026-11-29T00:00Z


@pytest.mark.parametrize(
    ("now", "level"),
    [
        (dt.datetime(2026, 11, 28, 23, 59, 59, tzinfo=dt.timezone.utc), Level.WARN),  # just before expiry
        (dt.datetime(2026, 11, 29, 0, 0, 0, tzinfo=dt.timezone.utc), Level.ERROR),  # at expiry
        (dt.datetime(2026, 11, 29, 0, 0, 1, tzinfo=dt.timezone.utc), Level.ERROR),  # just after
        (dt.datetime(2026, 10, 30, 0, 0, 0, tzinfo=dt.timezone.utc), Level.WARN),  # exactly 30 days ahead
        (dt.datetime(2026, 10, 29, 23, 59, 59, tzinfo=dt.timezone.utc), Level.OK),  # 30 days + 1 s ahead
        (dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc), Level.ERROR),  # before its date
    ],
)
def test_attestation_expiry_boundaries(now: dt.datetime, level: Level) -> None:
    att = attestation("hmi_mfa", dt.date(2026, 1, 1), EXP)
    report = evaluate_posture(catalog(control("c", attestations=("hmi_mfa",))), [], [att], now)
    assert report.results[0].level == level
    assert report.results[0].evidence == ("hmi_mfa",)


def test_expired_reason() -> None:
    att = attestation("hmi_mfa", dt.date(2025, 1, 1), dt.date(2026, 6, 1))
    result = _one(control("c", attestations=("hmi_mfa",)), attestations=[att])
    assert result.reason == "attestation hmi_mfa expired on 2026-06-01"


class _Exploding(Finding):
    @property
    def check(self) -> str:  # type: ignore[override]
        raise RuntimeError("boom")

    @check.setter
    def check(self, value: str) -> None:
        pass


def test_exception_is_error_naming_control() -> None:
    bad = _Exploding("x", "/s", Level.OK, "m")
    report = evaluate_posture(
        catalog(control("broken", checks=("crl",)), control("fine", attestations=("a",))),
        [bad],
        [attestation("a", dt.date(2026, 1, 1), dt.date(2027, 6, 1))],
        NOW,
    )
    broken, fine = report.results
    assert broken.level == Level.ERROR
    assert "control broken could not be evaluated" in broken.reason
    assert "boom" in broken.reason
    assert fine.level == Level.OK


def test_empty_catalog_is_error_score_zero() -> None:
    report = evaluate_posture(catalog(), [], [], NOW)
    assert report.level == Level.ERROR
    assert report.score == 0
    assert report.evaluated_at == NOW


def _result(priority: Priority, level: Level) -> ControlResult:
    return ControlResult("c", "C", priority, level, "", (), ())


@pytest.mark.parametrize(
    ("results", "score"),
    [
        ([(Priority.CRITICAL, Level.OK)], 100),
        ([(Priority.CRITICAL, Level.ERROR)], 0),
        ([(Priority.CRITICAL, Level.STALE), (Priority.LOW, Level.OK)], 20),  # 1/5
        ([(Priority.HIGH, Level.WARN)], 50),
        ([(Priority.CRITICAL, Level.OK), (Priority.HIGH, Level.WARN), (Priority.MEDIUM, Level.ERROR), (Priority.LOW,
                                                                                                       Level.OK)], 65),  # 6.5/10  # noqa: E501 (test data kept on one line)
        ([(Priority.LOW, Level.WARN), (Priority.LOW, Level.OK), (Priority.LOW, Level.OK), (Priority.LOW, Level.OK),
          (Priority.LOW, Level.OK), (Priority.LOW, Level.OK), (Priority.LOW, Level.OK), (Priority.LOW,
                                                                                         Level.OK)], 94),  # 93.75
        ([(Priority.HIGH, Level.OK), (Priority.HIGH, Level.ERROR), (Priority.LOW, Level.WARN), (Priority.LOW,
                                                                                                Level.ERROR)], 44),  # 3.5/8=43.75  # noqa: E501 (test data kept on one line)
        ([(Priority.MEDIUM, Level.WARN), (Priority.MEDIUM, Level.ERROR), (Priority.MEDIUM, Level.ERROR),
          (Priority.MEDIUM, Level.ERROR)], 13),  # 12.5 half up
        ([], 0),
    ],
)
def test_score_arithmetic(results: list[tuple[Priority, Level]], score: int) -> None:
    assert score_results([_result(p, lv) for p, lv in results]) == score


def test_overall_level_is_worst_and_score_matches() -> None:
    report = evaluate_posture(
        catalog(control("a", Priority.CRITICAL, checks=("crl",)), control("b", Priority.LOW, checks=("key_modes",))),
        [finding("crl"), finding("key_modes", Level.WARN)],
        [],
        NOW,
    )
    assert report.level == Level.WARN
    assert report.score == 90  # (4 + 0.5) / 5
