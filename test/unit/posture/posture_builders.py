"""Builders for posture tests: tiny catalogs, findings and attestations made in code."""

from __future__ import annotations

import datetime as dt

from cobot_security.posture.attestations import Attestation
from cobot_security.posture.catalog import Control, ControlsCatalog, Priority
from cobot_security.status import Finding, Level


def control(cid: str, priority: Priority = Priority.HIGH, checks: tuple[str, ...] = (),
            attestations: tuple[str, ...] = ()) -> Control:
    """A control with one reference."""
    return Control(cid, cid.title(), priority, ("IEC 62443-3-3 SR 1.2",), checks, attestations)


def catalog(*controls: Control) -> ControlsCatalog:
    """A catalog of ``controls``."""
    return ControlsCatalog(1, tuple(controls))


def finding(check: str, level: Level = Level.OK, subject: str = "/cell/arm") -> Finding:
    """A finding for ``check``."""
    return Finding(check, subject, level, f"{check} is {level.name}")


def attestation(aid: str, date: dt.date, expires: dt.date) -> Attestation:
    """An attestation valid from ``date`` to ``expires``."""
    return Attestation(aid, "statement", "tester", date, expires, "EV-1")
