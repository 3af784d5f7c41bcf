"""The posture as a listener of /cobot_security/posture sees it: one row per control, the score, recent alerts.

Filled by a ROS listener (the demo's monitor node), read by text and report renderers; pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cobot_security.status import Level


@dataclass
class ControlRow:
    """The latest posture status of one control as published by the supervisor."""

    control: str
    level: Level
    message: str


@dataclass
class PostureView:
    """What the demo knows of the posture: one row per control, the score, recent alerts."""

    rows: dict[str, ControlRow] = field(default_factory=dict)
    score: int | None = None
    overall: Level | None = None
    alerts: list[str] = field(default_factory=list)

    def update_control(self, control: str, level: Level, message: str) -> None:
        """Record the latest status of ``control``."""
        self.rows[control] = ControlRow(control, level, message)

    def add_alert(self, text: str, keep: int = 6) -> None:
        """Remember an alert line (the newest ``keep``)."""
        self.alerts.append(text)
        del self.alerts[:-keep]
