"""Benchmark: wall time to create a keystore with 10, 50 and 200 enclaves (prints figures only)."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cobot_security.clock import utc_now
from cobot_security.keystore.store import init_keystore
from cobot_security.policy.model import Enclave, GovernanceOptions, Lifetimes, NodeGrants, WorkcellPolicy


def synthetic_policy(enclaves: int) -> WorkcellPolicy:
    """A cell of ``enclaves`` nodes, each publishing two topics and subscribing its neighbour's."""
    items = []
    for i in range(enclaves):
        node = NodeGrants(
            name=f"node_{i}",
            namespace="/bench",
            publish=(f"topic_{i}", "~/status"),
            subscribe=(f"topic_{(i + 1) % enclaves}",),
            services_serve=("~/configure",),
        )
        items.append(Enclave(f"/bench/node_{i}", (node,)))
    return WorkcellPolicy(1, f"bench-{enclaves}", (0,), GovernanceOptions(), Lifetimes(), tuple(items))


def main() -> None:
    """Time init_keystore for each size and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'enclaves':>8}  {'median s':>9}  {'min s':>7}  {'ms/enclave':>10}")
    for size in args.sizes:
        policy = synthetic_policy(size)
        times = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                init_keystore(Path(tmp) / "ks", policy, utc_now())
                times.append(time.perf_counter() - start)
        median = statistics.median(times)
        print(f"{size:>8}  {median:>9.3f}  {min(times):>7.3f}  {1000 * median / size:>10.1f}")


if __name__ == "__main__":
    main()
