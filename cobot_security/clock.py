"""Time: the only reader of the wall clock (logic takes ``now``; adapters call utc_now()) and the time helpers."""

from __future__ import annotations

import datetime as _dt
from typing import Protocol

_DAY = _dt.timedelta(days=1)


class Clock(Protocol):
    """Something that tells the current UTC time (a frozen clock in tests)."""

    def __call__(self) -> _dt.datetime: ...


def utc_now() -> _dt.datetime:
    """Return the current time, timezone-aware UTC, without microseconds (X.509 has seconds)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)


def iso_utc(value: _dt.datetime) -> str:
    """``value`` as ISO 8601 in UTC to the second (``2026-01-01T00:00:00+00:00``): the one time format we write."""
    return value.astimezone(_dt.timezone.utc).replace(microsecond=0).isoformat()


def days_left(not_after: _dt.datetime, now: _dt.datetime) -> int:
    """Whole days from ``now`` until ``not_after``, floored: 0 on the last day, negative once expired."""
    return (not_after - now) // _DAY
