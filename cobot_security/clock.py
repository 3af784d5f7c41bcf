"""The only reader of the wall clock: logic takes ``now`` as a parameter, adapters call utc_now()."""

from __future__ import annotations

import datetime as _dt
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current UTC time (a frozen clock in tests)."""

    def __call__(self) -> _dt.datetime: ...


def utc_now() -> _dt.datetime:
    """Return the current time, timezone-aware UTC, without microseconds (X.509 has seconds)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
