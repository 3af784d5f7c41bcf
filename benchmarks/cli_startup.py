"""Benchmark: CLI start-up and one process per enclave on an N-enclave keystore, beside sros2 (figures only).

* ``cobot-security --help`` run ``--runs`` times;
* on a keystore that already holds ``--keystore-size`` enclaves, ``--runs`` processes each creating
  one new enclave: ours ``cobot-security enclave create PATH`` (policy YAML parsed, CA keys
  loaded, enclave issued, keystore lock, durable commit), sros2's ``create_enclave`` API in a fresh
  ``python -c`` (what ``ros2 security create_enclave`` runs, without ros2cli's own start-up).

Ours runs as ``python -m cobot_security.cli.main`` so that ``--code DIR`` can measure another
checkout; the console script does the same imports.  Runs of the two tools are interleaved.

    python benchmarks/cli_startup.py [--runs 20] [--keystore-size 200] [--sros2 DIR] [--code DIR] [--json]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

from harness import (
    REPO,
    SROS2_SHIM,
    emit,
    ours_environment,
    sros2_environment,
    summary,
    synthetic_policy_yaml,
    temporary_directory,
)

_OURS_INIT = ("import datetime as dt, sys; from pathlib import Path; "
              "from cobot_security.policy.load import load_policy; "
              "from cobot_security.keystore.store import init_keystore; "
              "init_keystore(Path(sys.argv[1]), load_policy(Path(sys.argv[2])), dt.datetime.now(dt.timezone.utc))")
_SROS2_INIT = SROS2_SHIM + ("import sys; from pathlib import Path; import sros2.keystore as k\n"
                            "k.create_keystore(Path(sys.argv[1]))\n"
                            "for i in range(int(sys.argv[2])):\n"
                            "    k.create_enclave(Path(sys.argv[1]), f'/bench/node_{i}')\n")
_SROS2_ONE = SROS2_SHIM + ("import sys; from pathlib import Path; import sros2.keystore as k\n"
                           "k.create_enclave(Path(sys.argv[1]), sys.argv[2])\n")


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one process (which must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, timeout=300, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.decode()[-2000:]}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _row(what: str, tool: str, runs: list[tuple[float, float]]) -> dict[str, object]:
    wall, cpu = summary([w for w, _ in runs]), summary([c for _, c in runs])
    return {"what": what, "tool": tool, "runs": len(runs), "wall_ms_median": 1000 * wall["median"],
            "wall_ms_min": 1000 * wall["min"], "cpu_ms_median": 1000 * cpu["median"]}


def run(runs: int, size: int, code: Path, sros2: Path | None) -> tuple[list[dict[str, object]], list[str]]:
    """Time --help, then one process per new enclave for each tool, interleaved."""
    python = sys.executable
    ours_env = ours_environment(code)
    ours_cli = [python, "-m", "cobot_security.cli.main"]
    notes: list[str] = []
    with temporary_directory() as tmp:
        base = Path(tmp)
        help_runs = [_run([*ours_cli, "--help"], ours_env) for _ in range(runs)]
        rows = [_row("--help", "ours", help_runs)]
        sros2_env = sros2_environment(sros2, base / "ament")
        policy = base / "policy.yaml"
        policy.write_text(synthetic_policy_yaml(size))
        _run([python, "-c", _OURS_INIT, str(base / "ours"), str(policy)], ours_env)
        # The CLI's policy names the enclaves to add besides the ones already issued.
        grown = base / "grown.yaml"
        grown.write_text(synthetic_policy_yaml(size + runs))
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        if sros2_env is not None:
            _run([python, "-c", _SROS2_INIT, str(base / "sros2"), str(size)], sros2_env)
        else:
            notes.append("sros2 not available (pass --sros2 DIR with a ros2/sros2 checkout): ours only")
        for i in range(size, size + runs):
            ours.append(_run([*ours_cli, "enclave", "create", f"/bench/node_{i}", "--keystore", str(base / "ours"),
                              "--policy", str(grown)], ours_env))
            if sros2_env is not None:
                theirs.append(_run([python, "-c", _SROS2_ONE, str(base / "sros2"), f"/bench/node_{i}"], sros2_env))
        rows.append(_row(f"enclave create on {size}", "ours", ours))
        if theirs:
            rows.append(_row(f"enclave create on {size}", "sros2", theirs))
    return rows, notes


def main() -> int:
    """Parse the options, run, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keystore-size", type=int, default=200)
    parser.add_argument("--code", type=Path, default=REPO, help="checkout of cobot_security to measure")
    parser.add_argument("--sros2", type=Path, default=None, help="ros2/sros2 source checkout")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows, notes = run(args.runs, args.keystore_size, args.code.resolve(), args.sros2)
    emit("CLI start-up", rows, [
        ("what", "what", ""), ("tool", "tool", ""), ("runs", "runs", "d"), ("wall_ms_median", "median ms", ".0f"),
        ("wall_ms_min", "min ms", ".0f"), ("cpu_ms_median", "cpu ms", ".0f"),
    ], args.json, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
