"""Last-seen tracking of health reporters: silent reporters turn STALE, then ERROR, then are forgotten.

This is the diagnostic aggregator's STALE idea without a clock: the caller passes ``now`` to both
:meth:`ReporterTracker.observe` and :meth:`ReporterTracker.current`.  A reporter is fresh while its
age is at most ``stale_after_s``, STALE once the age is past it, ERROR once past ``error_after_s``.
Bounded: at most ``max_reporters`` are tracked (a new one beyond is refused), and a reporter silent
for ``forget_after_s`` is forgotten by :meth:`ReporterTracker.forget`, but only after one
evaluation showed it at ERROR.  With no reporter at all there are no findings, so every
check-based control fails closed.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cobot_security.checks import REPORTER_LIVENESS
from cobot_security.status import Finding, Level

__all__ = ["ReporterTracker"]


@dataclass
class _Seen:
    findings: tuple[Finding, ...]
    at: _dt.datetime
    error_shown: bool = False


class ReporterTracker:
    """The latest findings of each reporter and how long ago they arrived."""

    def __init__(self, stale_after_s: float, error_after_s: float, forget_after_s: float | None = None,
                 max_reporters: int | None = None) -> None:
        """Reporters older than ``stale_after_s`` are STALE, older than ``error_after_s`` ERROR.

        ``forget_after_s`` (None: never) and ``max_reporters`` (None: unbounded) bound the table.

        :raises ValueError: unless 0 < stale_after_s < error_after_s < forget_after_s and
            max_reporters is positive.
        """
        if not 0 < stale_after_s < error_after_s:
            raise ValueError(
                f"expected 0 < stale_after_s < error_after_s, got {stale_after_s} and {error_after_s}"
            )
        if forget_after_s is not None and not forget_after_s > error_after_s:
            raise ValueError(f"expected forget_after_s > error_after_s, got {forget_after_s} and {error_after_s}")
        if max_reporters is not None and max_reporters < 1:
            raise ValueError(f"expected a positive max_reporters, got {max_reporters}")
        self._stale_after = _dt.timedelta(seconds=stale_after_s)
        self._error_after = _dt.timedelta(seconds=error_after_s)
        self._forget_after = _dt.timedelta(seconds=forget_after_s) if forget_after_s is not None else None
        self.max_reporters = max_reporters
        self._seen: dict[str, _Seen] = {}

    def __contains__(self, reporter: object) -> bool:
        return reporter in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def has_room_for(self, reporter: str) -> bool:
        """True when ``reporter`` is tracked already or the table has room for one more."""
        return reporter in self._seen or self.max_reporters is None or len(self._seen) < self.max_reporters

    def reporters(self) -> list[str]:
        """The tracked reporters, sorted."""
        return sorted(self._seen)

    def observe(self, reporter: str, findings: Sequence[Finding], now: _dt.datetime) -> bool:
        """Record ``findings`` as ``reporter``'s complete current set, replacing its previous one.

        False (and nothing recorded) for a new reporter while ``max_reporters`` are tracked.
        """
        if not self.has_room_for(reporter):
            return False
        self._seen[reporter] = _Seen(tuple(findings), now)
        return True

    def forget(self, now: _dt.datetime) -> list[str]:
        """Drop the reporters silent for longer than ``forget_after_s`` whose ERROR was shown; their names."""
        if self._forget_after is None:
            return []
        gone = [r for r, seen in self._seen.items() if seen.error_shown and now - seen.at > self._forget_after]
        for reporter in gone:
            del self._seen[reporter]
        return gone

    def _age_level(self, age: _dt.timedelta) -> Level:
        if age > self._error_after:
            return Level.ERROR
        if age > self._stale_after:
            return Level.STALE
        return Level.OK

    def current(self, now: _dt.datetime) -> list[Finding]:
        """All latest findings, aged at ``now``, plus one reporter_liveness finding per reporter."""
        result: list[Finding] = []
        for reporter in sorted(self._seen):
            seen = self._seen[reporter]
            level = self._age_level(now - seen.at)
            seen.error_shown = seen.error_shown or level == Level.ERROR
            since = seen.at.isoformat()
            for finding in seen.findings:
                if level == Level.OK:
                    result.append(finding)
                    continue
                result.append(
                    replace(
                        finding,
                        level=level,
                        message=f"no report from {reporter} since {since} (last: {finding.message})",
                        values=tuple(kv for kv in finding.values if kv[0] != "reporter") + (("reporter", reporter),),
                    )
                )
            message = f"last report at {since}" if level == Level.OK else f"no report since {since}"
            result.append(
                Finding(
                    check=REPORTER_LIVENESS,
                    subject=reporter,
                    level=level,
                    message=message,
                    values=(("reporter", reporter), ("last_seen", since)),
                )
            )
        return result
