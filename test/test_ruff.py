"""Static hygiene: ruff (ruff.toml: pycodestyle, pyflakes, import order, 120 columns) is clean everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    targets = [str(REPO / d) for d in ("cobot_security", "test", "benchmarks", "launch")]
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config", str(REPO / "ruff.toml"),
                           *targets], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
