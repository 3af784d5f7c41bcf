"""Time to rotate 10, 50 and 200 enclaves (archive + re-issue + swap + audit each); prints figures.

Run: ``python benchmarks/rotation.py [counts...]``.  Each run builds a throwaway keystore in a
temporary directory with a synthetic policy (one node per enclave, one topic each way).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cobot_security.keystore.rotation import plan_rotation, rotate_enclaves  # noqa: E402
from cobot_security.keystore.store import init_keystore  # noqa: E402
from cobot_security.policy.model import (  # noqa: E402
    Enclave,
    GovernanceOptions,
    Lifetimes,
    NodeGrants,
    WorkcellPolicy,
)


def synthetic_policy(count: int) -> WorkcellPolicy:
    """``count`` enclaves /bench/nNNN, each publishing and subscribing /bench/chatter."""
    enclaves = tuple(
        Enclave(f"/bench/n{i:03d}", (NodeGrants(f"n{i:03d}", "/bench", publish=("chatter",),
                                                subscribe=("chatter",)),))
        for i in range(count)
    )
    return WorkcellPolicy(1, "bench", (0,), GovernanceOptions(), Lifetimes(), enclaves)


def measure(count: int) -> tuple[float, float]:
    """Seconds to build the keystore and to rotate every enclave of it."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    policy = synthetic_policy(count)
    with tempfile.TemporaryDirectory(prefix="cobot-bench-") as tmp:
        start = time.perf_counter()
        keystore = init_keystore(Path(tmp) / "ks", policy, now)
        built = time.perf_counter() - start
        items = plan_rotation(keystore, policy, now, all=True)
        start = time.perf_counter()
        rotate_enclaves(keystore, policy, items, now)
        return built, time.perf_counter() - start


def main(argv: list[str]) -> int:
    """Print one line per enclave count."""
    counts = [int(a) for a in argv] or [10, 50, 200]
    print(f"{'enclaves':>8}  {'init s':>8}  {'rotate s':>9}  {'ms/enclave':>10}")
    for count in counts:
        built, rotated = measure(count)
        print(f"{count:>8}  {built:>8.2f}  {rotated:>9.2f}  {1000 * rotated / count:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
