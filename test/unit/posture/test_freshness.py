"""ReporterTracker: STALE and ERROR exactly at and just past their deadlines."""

from __future__ import annotations

import datetime as dt

import pytest
from posture_builders import finding

from cobot_security.posture.freshness import ReporterTracker
from cobot_security.status import Level

T0 = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.timezone.utc)
EPS = dt.timedelta(microseconds=1)


def _levels(tracker: ReporterTracker, now: dt.datetime) -> dict[tuple[str, str], Level]:
    return {(f.check, f.subject): f.level for f in tracker.current(now)}


def test_no_reporter_no_findings() -> None:
    assert ReporterTracker(3.0, 10.0).current(T0) == []


@pytest.mark.parametrize(
    ("age", "level"),
    [
        (dt.timedelta(0), Level.OK),
        (dt.timedelta(seconds=3), Level.OK),
        (dt.timedelta(seconds=3) + EPS, Level.STALE),
        (dt.timedelta(seconds=10), Level.STALE),
        (dt.timedelta(seconds=10) + EPS, Level.ERROR),
    ],
)
def test_transitions_at_deadlines(age: dt.timedelta, level: Level) -> None:
    tracker = ReporterTracker(stale_after_s=3.0, error_after_s=10.0)
    tracker.observe("host_a", [finding("crl"), finding("key_modes", Level.WARN)], T0)
    levels = _levels(tracker, T0 + age)
    assert levels[("reporter_liveness", "host_a")] == level
    assert levels[("crl", "/cell/arm")] == level
    expected_key_modes = Level.WARN if level == Level.OK else level
    assert levels[("key_modes", "/cell/arm")] == expected_key_modes


def test_stale_message_says_since_when() -> None:
    tracker = ReporterTracker(3.0, 10.0)
    tracker.observe("host_a", [finding("crl")], T0)
    stale = [f for f in tracker.current(T0 + dt.timedelta(seconds=5)) if f.check == "crl"][0]
    assert stale.subject == "/cell/arm"
    assert "since 2026-11-29T12:00:00+00:00" in stale.message
    assert stale.value("reporter") == "host_a"


def test_observe_replaces_previous_set_per_reporter() -> None:
    tracker = ReporterTracker(3.0, 10.0)
    tracker.observe("a", [finding("crl"), finding("key_modes")], T0)
    tracker.observe("b", [finding("cert_chain")], T0)
    tracker.observe("a", [finding("crl", Level.ERROR)], T0 + dt.timedelta(seconds=1))
    levels = _levels(tracker, T0 + dt.timedelta(seconds=2))
    assert levels == {
        ("crl", "/cell/arm"): Level.ERROR,
        ("reporter_liveness", "a"): Level.OK,
        ("cert_chain", "/cell/arm"): Level.OK,
        ("reporter_liveness", "b"): Level.OK,
    }


def test_one_reporter_stale_other_fresh() -> None:
    tracker = ReporterTracker(3.0, 10.0)
    tracker.observe("a", [finding("crl")], T0)
    tracker.observe("b", [finding("cert_chain")], T0 + dt.timedelta(seconds=4))
    levels = _levels(tracker, T0 + dt.timedelta(seconds=5))
    assert levels[("reporter_liveness", "a")] == Level.STALE
    assert levels[("reporter_liveness", "b")] == Level.OK


@pytest.mark.parametrize(("stale", "error"), [(0, 1), (3, 3), (5, 2)])
def test_bad_deadlines(stale: float, error: float) -> None:
    with pytest.raises(ValueError, match="stale_after_s < error_after_s"):
        ReporterTracker(stale, error)


def test_table_is_bounded_and_forgets_only_after_showing_error() -> None:
    tracker = ReporterTracker(3.0, 10.0, forget_after_s=30.0, max_reporters=2)
    assert tracker.observe("a", [finding("crl")], T0) and tracker.observe("b", [finding("crl")], T0)
    assert not tracker.observe("c", [finding("crl")], T0)
    assert tracker.observe("a", [finding("crl", Level.WARN)], T0)  # a known reporter still reports
    late = T0 + dt.timedelta(seconds=31)
    assert tracker.forget(late) == []  # no evaluation has shown them at ERROR yet
    tracker.observe("b", [finding("crl")], late)
    tracker.current(late)
    assert tracker.forget(late) == ["a"]
    assert tracker.reporters() == ["b"] and tracker.has_room_for("c")


@pytest.mark.parametrize(("forget", "most"), [(10.0, None), (5.0, None), (None, 0)])
def test_bad_bounds_are_refused(forget: float | None, most: int | None) -> None:
    with pytest.raises(ValueError, match="expected"):
        ReporterTracker(3.0, 10.0, forget_after_s=forget, max_reporters=most)
