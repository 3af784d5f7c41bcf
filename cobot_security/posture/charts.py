"""Pictures for the HTML report: inline SVG, no scripts, no external resources (pure: data in, text out).

* :func:`score_timeline_svg`: the posture score over a scenario's timeline, each event a marked,
  numbered vertical line (the legend under the chart names them);
* :func:`certificate_days_svg`: per enclave, its certificate's days left as a bar, coloured by
  the renewal window (amber) and expiry (red).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["SCORE_COLOUR", "certificate_days_svg", "score_timeline_svg"]

SCORE_COLOUR = "#0969da"
EVENT_COLOUR = "#8250df"
_OK, _WARN, _ERROR = "#1a7f37", "#bf8700", "#cf222e"
_AXIS = "#57606a"
_FONT = 'font-family="sans-serif" font-size="12"'


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    span = (high - low) or 1.0
    return out_low + (value - low) / span * (out_high - out_low)


def score_timeline_svg(samples: Sequence[tuple[float, int]], events: Sequence[tuple[float, str]],
                       width: int = 760, height: int = 260) -> str:
    """The score (0-100) against seconds since the scenario started, with the events marked."""
    left, right, top, bottom = 44, width - 16, 16, height - 36
    end = max([t for t, _ in samples] + [t for t, _ in events] + [1.0])
    x = lambda t: _scale(t, 0.0, end, left, right)  # noqa: E731 - local coordinate maps read best as lambdas
    y = lambda s: _scale(s, 0.0, 100.0, bottom, top)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="posture score over the scenario">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    for score in (0, 25, 50, 75, 100):
        parts.append(f'<line x1="{left}" y1="{y(score):.1f}" x2="{right}" y2="{y(score):.1f}" stroke="#d0d7de"/>')
        parts.append(f'<text x="{left - 6}" y="{y(score) + 4:.1f}" text-anchor="end" fill="{_AXIS}" {_FONT}>'
                     f'{score}</text>')
    for number, (when, title) in enumerate(events, start=1):
        parts.append(f'<line x1="{x(when):.1f}" y1="{top}" x2="{x(when):.1f}" y2="{bottom}" stroke="{EVENT_COLOUR}" '
                     f'stroke-dasharray="4 3" stroke-width="1.5"><title>{html.escape(title)}</title></line>')
        parts.append(f'<text x="{x(when) + 3:.1f}" y="{top + 12}" fill="{EVENT_COLOUR}" {_FONT}>{number}</text>')
    if samples:
        points = " ".join(f"{x(t):.1f},{y(s):.1f}" for t, s in samples)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{SCORE_COLOUR}" stroke-width="3"/>')
    parts.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{_AXIS}"/>')
    parts.append(f'<text x="{(left + right) / 2:.0f}" y="{height - 8}" text-anchor="middle" fill="{_AXIS}" {_FONT}>'
                 f'seconds since the scenario started (0 to {end:.0f})</text>')
    parts.append("</svg>")
    return "".join(parts)


def _bar_colour(days: int, renew_before_days: int) -> str:
    if days <= 0:
        return _ERROR
    return _WARN if days <= renew_before_days else _OK


def certificate_days_svg(days_left: Sequence[tuple[str, int]], renew_before_days: int, width: int = 760) -> str:
    """One bar per enclave: its certificate's days left (amber inside the renewal window, red when expired)."""
    row, label_width, left_pad = 24, 260, 8
    height = row * len(days_left) + 34
    longest = max([d for _, d in days_left] + [renew_before_days, 1])
    x = lambda d: _scale(max(d, 0), 0, longest, label_width, width - 60)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="certificate days left per enclave">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    for index, (enclave, days) in enumerate(days_left):
        top = 8 + index * row
        colour = _bar_colour(days, renew_before_days)
        parts.append(f'<text x="{left_pad}" y="{top + 15}" fill="#1f2328" {_FONT}>{html.escape(enclave)}</text>')
        parts.append(f'<rect x="{label_width}" y="{top + 3}" width="{max(x(days) - label_width, 2):.1f}" '
                     f'height="{row - 8}" fill="{colour}"/>')
        parts.append(f'<text x="{x(days) + 6:.1f}" y="{top + 15}" fill="{colour}" {_FONT}>{days} d</text>')
    renew = x(renew_before_days)
    bottom = 8 + row * len(days_left)
    parts.append(f'<line x1="{renew:.1f}" y1="4" x2="{renew:.1f}" y2="{bottom}" stroke="{_WARN}" '
                 'stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{renew:.1f}" y="{bottom + 18}" text-anchor="middle" fill="{_WARN}" {_FONT}>'
                 f'renewal window: {renew_before_days} d</text>')
    parts.append("</svg>")
    return "".join(parts)
