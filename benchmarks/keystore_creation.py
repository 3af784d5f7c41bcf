"""Benchmark: create a keystore with N enclaves, ours side by side with sros2's keystore API (figures only).

Ours is ``init_keystore`` (CAs, governance, every enclave, durable before it returns); sros2's is
``create_keystore`` then ``create_enclave`` per enclave (it never syncs).  Runs of the two are
interleaved, each in a fresh process; wall and CPU time (including worker processes) per enclave
and the peak RSS of the measuring process and of its workers are printed.

    python benchmarks/keystore_creation.py [--sizes 10 50 200 1000] [--repeat 3] [--sros2 DIR] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from harness import (
    REPO,
    SIZES,
    SROS2_SHIM,
    emit,
    measure,
    ours_environment,
    sros2_environment,
    summary,
    synthetic_policy_yaml,
    temporary_directory,
    timed,
)


def _child(tool: str, size: int) -> dict[str, float]:
    """Measure one creation in this (fresh) process."""
    with temporary_directory() as tmp:
        root = Path(tmp) / "ks"
        if tool == "sros2":
            exec(SROS2_SHIM, {})  # noqa: S102  (see harness.SROS2_SHIM)
            import sros2.keystore as sros2_keystore  # type: ignore[import-not-found]  # noqa: PLC0415

            def create() -> None:
                sros2_keystore.create_keystore(root)
                for i in range(size):
                    sros2_keystore.create_enclave(root, f"/bench/node_{i}")
            return timed(create)
        from cobot_security.keystore.store import init_keystore  # noqa: PLC0415
        from cobot_security.policy.load import load_policy  # noqa: PLC0415
        policy_file = Path(tmp) / "policy.yaml"
        policy_file.write_text(synthetic_policy_yaml(size))
        policy = load_policy(policy_file)
        now = dt.datetime.now(dt.timezone.utc)
        return timed(lambda: init_keystore(root, policy, now))


def run(sizes: list[int], repeat: int, code: Path, sros2: Path | None) -> tuple[list[dict[str, object]], list[str]]:
    """Interleaved runs per size; one row per (tool, size)."""
    script = Path(__file__).resolve()
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    with temporary_directory() as prefix:
        tools = {"ours": ours_environment(code)}
        sros2_env = sros2_environment(sros2, Path(prefix))
        if sros2_env is None:
            notes.append("sros2 not available (pass --sros2 DIR with a ros2/sros2 checkout): ours only")
        else:
            tools["sros2"] = sros2_env
        for size in sizes:
            runs: dict[str, list[dict[str, float]]] = {tool: [] for tool in tools}
            for _ in range(repeat):
                for tool, env in tools.items():
                    runs[tool].append(measure(script, [tool, str(size)], env))
            for tool, figures in runs.items():
                wall = summary([f["wall_s"] for f in figures])
                cpu = summary([f["cpu_s"] for f in figures])
                rows.append({"tool": tool, "enclaves": size, "wall_s_median": wall["median"],
                             "wall_ms_per_enclave": 1000 * wall["median"] / size,
                             "wall_ms_per_enclave_min": 1000 * wall["min"] / size,
                             "cpu_ms_per_enclave": 1000 * cpu["median"] / size,
                             "peak_rss_mib": max(f["peak_rss_mib"] for f in figures),
                             "workers_peak_rss_mib": max(f["workers_peak_rss_mib"] for f in figures)})
    if "sros2" in [r["tool"] for r in rows]:
        for size in sizes:
            ours = next(r for r in rows if r["tool"] == "ours" and r["enclaves"] == size)
            theirs = next(r for r in rows if r["tool"] == "sros2" and r["enclaves"] == size)
            ours["speedup_vs_sros2"] = float(theirs["wall_s_median"]) / float(ours["wall_s_median"])  # type: ignore[arg-type]
    return rows, notes


def main() -> int:
    """Parse the options, run, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", type=Path, default=REPO, help="checkout of cobot_security to measure")
    parser.add_argument("--sros2", type=Path, default=None, help="ros2/sros2 source checkout")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import json  # noqa: PLC0415
        print(json.dumps(_child(args.child[0], int(args.child[1]))))
        return 0
    rows, notes = run(args.sizes, args.repeat, args.code.resolve(), args.sros2)
    emit("keystore creation", rows, [
        ("tool", "tool", ""), ("enclaves", "enclaves", "d"), ("wall_s_median", "median s", ".3f"),
        ("wall_ms_per_enclave", "ms/enclave", ".2f"), ("wall_ms_per_enclave_min", "min ms/encl", ".2f"),
        ("cpu_ms_per_enclave", "cpu ms/encl", ".2f"), ("speedup_vs_sros2", "x sros2", ".2f"),
        ("peak_rss_mib", "RSS MiB", ".0f"), ("workers_peak_rss_mib", "workers MiB", ".0f"),
    ], args.json, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
