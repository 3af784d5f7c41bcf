"""Benchmark: rotate every enclave of an N-enclave keystore in one ``rotate_enclaves`` call (figures only).

Each run builds a throwaway keystore (untimed) in a fresh process, then times the rotation of all
its enclaves: re-issue (in worker processes for large batches), stage, one sync, switch, archive,
one manifest, audit and integrity write.  sros2 has no rotation, so there is no side by side here.

    python benchmarks/rotation.py [--sizes 10 50 200 1000] [--repeat 3] [--code DIR] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from harness import (
    REPO,
    SIZES,
    emit,
    measure,
    ours_environment,
    summary,
    synthetic_policy_yaml,
    temporary_directory,
    timed,
)


def _child(size: int) -> dict[str, float]:
    """Build a keystore, then time the rotation of all its enclaves, in this (fresh) process."""
    from cobot_security.keystore.rotation import plan_rotation, rotate_enclaves  # noqa: PLC0415
    from cobot_security.keystore.store import init_keystore  # noqa: PLC0415
    from cobot_security.policy.load import load_policy  # noqa: PLC0415

    with temporary_directory() as tmp:
        policy_file = Path(tmp) / "policy.yaml"
        policy_file.write_text(synthetic_policy_yaml(size))
        policy = load_policy(policy_file)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        keystore = init_keystore(Path(tmp) / "ks", policy, now)
        later = now + dt.timedelta(minutes=1)
        items = plan_rotation(keystore, policy, later, all=True)
        figures = timed(lambda: rotate_enclaves(keystore, policy, items, later))
        assert len(items) == size
        return figures


def main() -> int:
    """Parse the options, run, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", type=Path, default=REPO, help="checkout of cobot_security to measure")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=1, metavar="SIZE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(int(args.child[0]))))
        return 0
    script, env = Path(__file__).resolve(), ours_environment(args.code.resolve())
    rows: list[dict[str, object]] = []
    for size in args.sizes:
        figures = [measure(script, [str(size)], env) for _ in range(args.repeat)]
        wall, cpu = summary([f["wall_s"] for f in figures]), summary([f["cpu_s"] for f in figures])
        rows.append({"enclaves": size, "wall_s_median": wall["median"],
                     "wall_ms_per_enclave": 1000 * wall["median"] / size,
                     "wall_ms_per_enclave_min": 1000 * wall["min"] / size,
                     "cpu_ms_per_enclave": 1000 * cpu["median"] / size,
                     "peak_rss_mib": max(f["peak_rss_mib"] for f in figures),
                     "workers_peak_rss_mib": max(f["workers_peak_rss_mib"] for f in figures)})
    emit("rotation of all enclaves", rows, [
        ("enclaves", "enclaves", "d"), ("wall_s_median", "median s", ".3f"),
        ("wall_ms_per_enclave", "ms/enclave", ".2f"),
        ("wall_ms_per_enclave_min", "min ms/encl", ".2f"), ("cpu_ms_per_enclave", "cpu ms/encl", ".2f"),
        ("peak_rss_mib", "RSS MiB", ".0f"), ("workers_peak_rss_mib", "workers MiB", ".0f"),
    ], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
