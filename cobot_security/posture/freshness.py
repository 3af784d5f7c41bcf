"""Last-seen tracking of health reporters: silent reporters turn STALE, then ERROR.

This is the diagnostic aggregator's STALE idea without a clock: the caller passes ``now`` to both
:meth:`ReporterTracker.observe` and :meth:`ReporterTracker.current`.  A reporter is fresh while its
age is at most ``stale_after_s``, STALE once the age is past it, ERROR once past ``error_after_s``.
With no reporter at all there are no findings, so every check-based control fails closed.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cobot_security.checks import REPORTER_LIVENESS
from cobot_security.status import Finding, Level

__all__ = ["ReporterTracker"]


@dataclass(frozen=True)
class _Seen:
    findings: tuple[Finding, ...]
    at: _dt.datetime


class ReporterTracker:
    """The latest findings of each reporter and how long ago they arrived."""

    def __init__(self, stale_after_s: float, error_after_s: float) -> None:
        """Reporters older than ``stale_after_s`` are STALE, older than ``error_after_s`` ERROR.

        :raises ValueError: unless 0 < stale_after_s < error_after_s.
        """
        if not 0 < stale_after_s < error_after_s:
            raise ValueError(
                f"expected 0 < stale_after_s < error_after_s, got {stale_after_s} and {error_after_s}"
            )
        self._stale_after = _dt.timedelta(seconds=stale_after_s)
        self._error_after = _dt.timedelta(seconds=error_after_s)
        self._seen: dict[str, _Seen] = {}

    def observe(self, reporter: str, findings: Sequence[Finding], now: _dt.datetime) -> None:
        """Record ``findings`` as ``reporter``'s complete current set, replacing its previous one."""
        self._seen[reporter] = _Seen(tuple(findings), now)

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
