"""Benchmark: wall time of ``verify`` per middleware on the example cell (prints figures only).

A fresh keystore from policies/workcell.yaml (moved to ``--domain-id``), its Zenoh configuration
rendered, then the whole proof on each middleware ``--repeat`` times, and the cross-vendor
measurement once.  Figures depend on the machine (2 shared cores here); nothing is asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

from cobot_security.clock import utc_now
from cobot_security.dds.cross_vendor import measure_cross_vendor
from cobot_security.dds.verify import verify_keystore
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.middleware.zenoh_render import default_zenoh_dir, render_zenoh
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import MIDDLEWARES

EXAMPLE = Path(__file__).resolve().parent.parent / "policies" / "workcell.yaml"


def main() -> None:
    """Time the proof on each middleware and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domain-id", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    policy = dataclasses.replace(load_policy(EXAMPLE), domain_ids=(args.domain_id,))
    figures: dict[str, dict[str, float | int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "keystore"
        init_keystore(root, policy, utc_now())
        render_zenoh(Keystore.open(root), policy, default_zenoh_dir(root), utc_now())
        for middleware in MIDDLEWARES:
            times, checks, passed = [], 0, True
            for _ in range(args.repeat):
                start = time.perf_counter()
                report = verify_keystore(policy, root, utc_now(), middleware=middleware)
                times.append(time.perf_counter() - start)
                checks, passed = len(report.checks), passed and report.passed
            figures[middleware] = {"median_s": round(statistics.median(times), 2), "min_s": round(min(times), 2),
                                   "checks": checks, "passed": int(passed)}
        start = time.perf_counter()
        cross = measure_cross_vendor(policy, root)
        figures["cross_vendor"] = {"seconds": round(time.perf_counter() - start, 2),
                                   **{f"{c.writer_vendor}_to_{c.reader_vendor}": c.delivered for c in cross},
                                   "flows": cross[0].flows}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{'middleware':<12}  {'median s':>8}  {'min s':>6}  {'checks':>6}  passed")
    for name in MIDDLEWARES:
        row = figures[name]
        print(f"{name:<12}  {row['median_s']:>8.2f}  {row['min_s']:>6.2f}  {row['checks']:>6}  {bool(row['passed'])}")
    print("cross-vendor:", ", ".join(f"{k}={v}" for k, v in figures["cross_vendor"].items()))


if __name__ == "__main__":
    main()
