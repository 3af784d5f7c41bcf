"""The live posture table of the demo, as text (pure: state in, lines out; colours optional)."""

from __future__ import annotations

from cobot_security.posture.view import PostureView
from cobot_security.status import Level

_COLOURS = {Level.OK: "\033[32m", Level.WARN: "\033[33m", Level.ERROR: "\033[31m", Level.STALE: "\033[90m"}
_RESET = "\033[0m"
_BOLD = "\033[1m"


def _level(level: Level, colour: bool) -> str:
    text = level.name.ljust(5)
    return f"{_COLOURS[level]}{text}{_RESET}" if colour else text


def render_view(view: PostureView, *, step: str, elapsed_s: float, colour: bool, width: int = 110) -> list[str]:
    """The screen: scenario step, score, one line per control (reason cut to ``width``), alerts."""
    title = f"cobot_security demo  t={elapsed_s:5.1f}s  step: {step}"
    lines = [f"{_BOLD}{title}{_RESET}" if colour else title]
    if view.score is None:
        lines.append("waiting for the supervisor's first posture...")
        return lines
    overall = _level(view.overall, colour) if view.overall is not None else "?"
    lines.append(f"posture score {view.score:3d}/100  overall {overall}")
    lines.append("")
    name_width = max((len(c) for c in view.rows), default=10)
    for control in sorted(view.rows):
        row = view.rows[control]
        room = max(10, width - name_width - 9)
        message = row.message if len(row.message) <= room else row.message[: room - 1] + "…"
        lines.append(f"  {control.ljust(name_width)}  {_level(row.level, colour)}  {message}")
    if view.alerts:
        lines.append("")
        lines.append("recent alerts:")
        lines.extend(f"  {alert}" for alert in view.alerts)
    return lines
