"""Health and posture verdicts as typed values: Level (the diagnostic_msgs meaning) and Finding.

Every probe returns Findings, the reporter publishes them, the supervisor folds them into control
results.  Levels become bytes only at the ROS boundary (nodes/convert.py).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from cobot_security.errors import InputError


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


def finding_to_json(finding: Finding) -> dict[str, object]:
    """A Finding as a JSON object (level by name, values as [key, value] pairs, plus its status name)."""
    return {
        "name": finding.name,
        "check": finding.check,
        "subject": finding.subject,
        "level": finding.level.name,
        "message": finding.message,
        "values": [[key, value] for key, value in finding.values],
    }


def _level(value: object, source: str, field: str) -> Level:
    if isinstance(value, bool):
        raise InputError(source, field, "a level (OK, WARN, ERROR, STALE or 0-3)", repr(value))
    if isinstance(value, int):
        try:
            return Level(value)
        except ValueError:
            pass
    if isinstance(value, str) and value.upper() in Level.__members__:
        return Level[value.upper()]
    raise InputError(source, field, "a level (OK, WARN, ERROR, STALE or 0-3)", repr(value))


def _values(value: object, source: str, field: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        return tuple((str(k), str(v)) for k, v in value.items())
    if isinstance(value, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return tuple((str(k), str(v)) for k, v in value)
    raise InputError(source, field, "key/values as a mapping or [key, value] pairs", type(value).__name__)


def finding_from_json(item: object, source: str, field: str) -> Finding:
    """A Finding from its JSON object (levels by name or number, values as mapping or pairs).

    :raises InputError: naming ``source`` and ``field`` when the object is malformed.
    """
    if not isinstance(item, dict):
        raise InputError(source, field, "a finding object", type(item).__name__)
    texts: dict[str, str] = {}
    for key in ("check", "subject", "message"):
        value = item.get(key)
        if not isinstance(value, str) or (key != "message" and not value):
            raise InputError(source, f"{field}.{key}", "a string", repr(value))
        texts[key] = value
    level = _level(item.get("level"), source, f"{field}.level")
    return Finding(texts["check"], texts["subject"], level, texts["message"],
                   _values(item.get("values"), source, f"{field}.values"))
