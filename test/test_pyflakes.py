"""Static hygiene: pyflakes finds no unused imports, undefined names or dead f-strings anywhere."""

from __future__ import annotations

from pathlib import Path

from pyflakes.api import checkPath
from pyflakes.reporter import Reporter

REPO = Path(__file__).resolve().parent.parent


class _Collect:
    """A file-like sink for pyflakes' reporter."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        if text.strip():
            self.lines.append(text.strip())


def test_pyflakes_is_clean() -> None:
    sink = _Collect()
    reporter = Reporter(sink, sink)
    files = sorted(p for d in ("cobot_security", "test", "benchmarks", "launch") for p in (REPO / d).rglob("*.py"))
    assert len(files) > 50
    for path in files:
        checkPath(str(path), reporter)
    assert sink.lines == []
