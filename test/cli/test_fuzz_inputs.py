"""Fuzzing every input file class through the CLI (issue 16): exit 2, one line, no traceback.

A few hundred hostile files are generated from the shipped examples with a fixed seed
(``fuzz_cases.py``) and run through ``main(argv)`` in-process; a handful run through the real
console script too, so that nothing between the entry point and ``main`` prints a traceback.
Every case must be refused as bad input: exit code 2, exactly one line on stderr of the form
``cobot-security <command>: error: <file>...``, nothing on stdout, and no keystore written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_cases import GENERATORS, Case, generate

SEED = 16
CASES = generate(SEED)
TIMEOUT_S = 60


def _write(case: Case, directory: Path) -> list[str]:
    directory.mkdir()
    for name, data in case.files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    return [arg.replace("{dir}", str(directory)) for arg in case.argv]


def _problems(case: Case, directory: Path, code: int, out: str, err: str) -> list[str]:
    """Everything wrong with one answer (empty when the case was refused properly)."""
    lines = [line for line in err.splitlines() if line.strip()]
    command = case.argv[0]
    problems = []
    if code != 2:
        problems.append(f"exit {code}, expected 2")
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines, expected 1")
    if "Traceback" in err or "Error:" in err.split("error:", 1)[0]:
        problems.append("a traceback")
    if lines and not (lines[0].startswith(f"cobot-security {command}: error: ") and str(directory) in lines[0]):
        problems.append("stderr does not name the command and the file")
    if out.strip():
        problems.append("output on stdout")
    if (directory / "ks").exists():
        problems.append("a keystore was written")
    return [f"{case.label!r}: {p} (stderr: {err.strip()[:300]!r})" for p in problems]


def test_the_generator_is_seeded_and_large() -> None:
    assert len(CASES) == sum(GENERATORS.values()) >= 300
    assert [c.files for c in generate(SEED)[:20]] == [c.files for c in CASES[:20]]


def _cases_of(generator) -> list[Case]:  # type: ignore[no-untyped-def]
    names = list(GENERATORS)
    offset = sum(GENERATORS[g] for g in names[:names.index(generator)])
    return CASES[offset:offset + GENERATORS[generator]]


@pytest.mark.parametrize("generator", list(GENERATORS), ids=[g.__name__ for g in GENERATORS])
def test_every_hostile_input_is_refused_in_one_line(generator, cli, tmp_path: Path) -> None:
    failures = []
    for index, case in enumerate(_cases_of(generator)):
        directory = tmp_path / f"case{index}"
        result = cli(*_write(case, directory))
        failures += _problems(case, directory, result.code, result.out, result.err)
    assert failures == []


def _console_script() -> str:
    found = shutil.which("cobot-security", path=str(Path(sys.executable).parent)) or shutil.which("cobot-security")
    assert found, "the cobot-security console script is not installed"
    return found


#: The first case of every other generator also runs through the installed console script.
CONSOLE_CASES = [_cases_of(g)[0] for g in list(GENERATORS)[::2]]


@pytest.mark.parametrize("case", CONSOLE_CASES, ids=[c.label[:40] for c in CONSOLE_CASES])
def test_the_console_script_prints_no_traceback(case: Case, tmp_path: Path) -> None:
    directory = tmp_path / "case"
    argv = _write(case, directory)
    env = {k: v for k, v in os.environ.items() if k not in ("COBOT_SECURITY_CA_PASSPHRASE", "ROS_SECURITY_KEYSTORE")}
    done = subprocess.run([_console_script(), *argv], capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
                          cwd=tmp_path, check=False)
    assert _problems(case, directory, done.returncode, done.stdout, done.stderr) == []
