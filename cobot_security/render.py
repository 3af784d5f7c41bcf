"""Plain-text tables and JSON for results, shared by the CLI and the demo (presentation only, no decisions)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any, TextIO

_COLOURS = {"PASS": "\033[32m", "FAIL": "\033[31m", "WARN": "\033[33m", "ok": "\033[32m"}
_RESET = "\033[0m"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], out: TextIO | None = None,
          colour: bool = False) -> None:
    """Print an aligned text table; cells equal to PASS/FAIL/WARN are coloured when ``colour``."""
    stream = out or sys.stdout
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line.rstrip(), file=stream)
    print("  ".join("-" * w for w in widths), file=stream)
    for row in cells:
        parts = []
        for cell, width in zip(row, widths):
            padded = cell.ljust(width)
            if colour and cell in _COLOURS:
                padded = f"{_COLOURS[cell]}{cell}{_RESET}" + " " * (width - len(cell))
            parts.append(padded)
        print("  ".join(parts).rstrip(), file=stream)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    return value


def to_json(value: Any) -> str:
    """Stable, indented JSON of dataclasses, datetimes and enums."""
    return json.dumps(_plain(value), indent=2, sort_keys=True, default=str)
