"""Durations as policies write them (``90d``, ``2160h``, ``45m``, ``30s``): parsed without overflow.

A duration is ``<positive integer><unit s/m/h/d>``.  The number is converted to seconds as a
Python int and compared with the bounds before a :class:`datetime.timedelta` is built, so
``999999999999999999d`` is a bounded error rather than an OverflowError, and no duration in any
file exceeds :data:`MAX_DURATION`.
"""

from __future__ import annotations

import datetime as _dt
import re

__all__ = ["MAX_DURATION", "duration_seconds", "format_duration", "parse_duration"]

#: Longest duration any file may state (100 years); callers pass tighter bounds where they matter.
MAX_DURATION = _dt.timedelta(days=36500)

_DURATION = re.compile(r"([1-9][0-9]*)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_UNITS: tuple[tuple[str, int], ...] = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
#: A duration with more digits than this is far beyond MAX_DURATION in any unit.
_MAX_DURATION_DIGITS = 12


def duration_seconds(text: str) -> int:
    """Seconds of ``"90d"`` and the like (an int, never overflowing).

    :raises ValueError: when ``text`` is not ``<positive integer><unit s/m/h/d>``.
    """
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(text)
    digits = match.group(1)
    # A longer digit string is beyond every bound already; do not spend time converting it.
    number = int(digits) if len(digits) <= _MAX_DURATION_DIGITS else 10 ** _MAX_DURATION_DIGITS
    return number * _UNIT_SECONDS[match.group(2)]


def parse_duration(text: str) -> _dt.timedelta:
    """``"90d"`` → 90 days; units s, m, h, d; the number must be a positive integer, at most
    :data:`MAX_DURATION`.

    :raises ValueError: when ``text`` is not of that form or longer than :data:`MAX_DURATION`.
    """
    seconds = duration_seconds(text)
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{text} is longer than {format_duration(MAX_DURATION)}")
    return _dt.timedelta(seconds=seconds)


def format_duration(value: _dt.timedelta) -> str:
    """The largest exact unit: 90 days → ``"90d"``, 36 hours → ``"36h"`` (the inverse of parse_duration).

    :raises ValueError: for non-positive or sub-second durations, which the schema cannot express.
    """
    seconds = value.total_seconds()
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"duration must be a positive whole number of seconds, got {value}")
    for unit, size in _UNITS:
        if int(seconds) % size == 0:
            return f"{int(seconds) // size}{unit}"
    raise AssertionError("unreachable: 's' divides every whole number of seconds")
