"""Health and posture verdicts as typed values: Level (the diagnostic_msgs meaning) and Finding.

Every probe returns Findings, the reporter publishes them, the supervisor folds them into control
results.  Levels become bytes only at the ROS boundary (nodes/convert.py).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum


class Level(IntEnum):
    """OK 0, WARN 1, ERROR 2, STALE 3, as diagnostic_msgs/DiagnosticStatus defines them."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


def worst(levels: Iterable[Level]) -> Level:
    """The most severe level; STALE counts as worse than ERROR (no evidence is not a pass).

    An empty input is ERROR: fail closed.
    """
    values = list(levels)
    if not values:
        return Level.ERROR
    return max(values, key=lambda level: (level == Level.STALE, level))


STATUS_PREFIX = "cobot_security"


@dataclass(frozen=True)
class Finding:
    """One health check result about one subject (an enclave path, the host, a file...).

    ``check`` is snake_case (``cert_expiry``); ``values`` are the key/values published with it
    (reserved keys: enclave, not_after, days_left, control, references, evidence, reporter).
    """

    check: str
    subject: str
    level: Level
    message: str
    values: tuple[tuple[str, str], ...] = field(default=())

    @property
    def name(self) -> str:
        """Status name on the wire: ``cobot_security/<check>/<subject>``."""
        subject = self.subject if self.subject.startswith("/") else "/" + self.subject
        return f"{STATUS_PREFIX}/{self.check}{subject}"

    def value(self, key: str) -> str | None:
        """The value published under ``key``, if any."""
        for k, v in self.values:
            if k == key:
                return v
        return None


def parse_status_name(name: str) -> tuple[str, str] | None:
    """Split ``cobot_security/<check>/<subject>`` into (check, subject); None if not ours."""
    prefix = STATUS_PREFIX + "/"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    check, sep, subject = rest.partition("/")
    if not check or not sep:
        return None
    return check, "/" + subject


@dataclass(frozen=True)
class Observation:
    """A Finding as the supervisor saw it: from which reporter (host/node) and when."""

    finding: Finding
    reporter: str
    received_at: _dt.datetime
