"""TransitionFilter hysteresis and the critical-failure rule."""

from __future__ import annotations

import pytest
from posture_builders import catalog, control

from cobot_security.posture.alerts import (
    Transition,
    TransitionFilter,
    is_critical_failure,
)
from cobot_security.posture.catalog import Priority
from cobot_security.posture.evaluate import ControlResult
from cobot_security.status import Level


def _r(level: Level, cid: str = "c") -> ControlResult:
    return ControlResult(cid, "C", Priority.HIGH, level, "", (), ())


def test_first_evaluation_reports_every_control_once() -> None:
    f = TransitionFilter()
    out = f.update([_r(Level.OK, "a"), _r(Level.ERROR, "b")])
    assert [(t.control_id, t.previous, t.current) for t in out] == [("a", None, Level.OK), ("b", None, Level.ERROR)]
    assert f.update([_r(Level.OK, "a"), _r(Level.ERROR, "b")]) == []


def test_flapping_does_not_emit() -> None:
    f = TransitionFilter(confirm_count=2)
    f.update([_r(Level.OK)])
    for level in [Level.ERROR, Level.OK, Level.ERROR, Level.OK, Level.WARN, Level.ERROR, Level.OK]:
        assert f.update([_r(level)]) == []


def test_confirmed_change_emits_once() -> None:
    f = TransitionFilter(confirm_count=2)
    f.update([_r(Level.OK)])
    assert f.update([_r(Level.ERROR)]) == []
    (t,) = f.update([_r(Level.ERROR)])
    assert (t.previous, t.current) == (Level.OK, Level.ERROR)
    assert t.result.level == Level.ERROR
    assert f.update([_r(Level.ERROR)]) == []
    assert f.update([_r(Level.ERROR)]) == []


def test_confirm_count_three_and_one() -> None:
    f = TransitionFilter(confirm_count=3)
    f.update([_r(Level.OK)])
    assert f.update([_r(Level.WARN)]) == [] and f.update([_r(Level.WARN)]) == []
    assert len(f.update([_r(Level.WARN)])) == 1
    g = TransitionFilter(confirm_count=1)
    g.update([_r(Level.OK)])
    assert len(g.update([_r(Level.ERROR)])) == 1


def test_bad_confirm_count() -> None:
    with pytest.raises(ValueError, match="confirm_count >= 1"):
        TransitionFilter(0)


CAT = catalog(control("crit", Priority.CRITICAL, checks=("crl",)), control("high", Priority.HIGH, checks=("crl",)))


@pytest.mark.parametrize(
    ("cid", "previous", "current", "expected"),
    [
        ("crit", Level.OK, Level.ERROR, True),
        ("crit", Level.WARN, Level.STALE, True),
        ("crit", None, Level.ERROR, True),
        ("crit", Level.ERROR, Level.STALE, False),
        ("crit", Level.OK, Level.WARN, False),
        ("crit", Level.ERROR, Level.OK, False),
        ("high", Level.OK, Level.ERROR, False),
        ("unknown", Level.OK, Level.ERROR, True),
    ],
)
def test_is_critical_failure(cid: str, previous: Level | None, current: Level, expected: bool) -> None:
    t = Transition(cid, previous, current, _r(current, cid))
    assert is_critical_failure(t, CAT) is expected
