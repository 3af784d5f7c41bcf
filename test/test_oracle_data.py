"""The sros2 oracle tests skip with one clear reason where the data is absent, and fail in CI.

Runs one oracle test in a child pytest with ``COBOT_SECURITY_ORACLES`` naming a missing folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ORACLE_TEST = "test/unit/policy/test_compile.py::test_example_governance_is_valid"


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    environ.update(COBOT_SECURITY_ORACLES=str(tmp_path / "no-oracles"), **env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", ORACLE_TEST],
                          cwd=REPO, env=environ, capture_output=True, text=True, timeout=120, check=False)


def test_missing_oracle_data_skips_naming_the_variable(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert f"sros2 oracle data not found at {tmp_path / 'no-oracles' / 'schemas'}: set COBOT_SECURITY_ORACLES" \
        in result.stdout


def test_missing_oracle_data_fails_in_ci(tmp_path: Path) -> None:
    result = _run(tmp_path, CI="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout  # failed in the fixture: the test cannot run
    assert "CI=true: the oracle tests must run here" in result.stdout
