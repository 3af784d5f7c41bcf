"""Online renewal of 200 enclaves on two member hosts through the authority (figures only).

A synthetic cell (``ca_pc`` authority, ``host_a`` and ``host_b`` with 100 enclaves each) is set up
70 days in the past in a temporary directory: the CA keystore, then a bundle installed on each
host.  Now every certificate is inside its renew window: three real ``keystore_manager`` processes
(role authority, member, member; rclpy on loopback) renew all of them, new keys born on the hosts.
Printed: total time from the first request to the last install, per-renewal latency p50/p99 (the
round trip of the request that carried it, as each member logs it) and the authority's CPU per
renewal (utime + stime from /proc while the renewals ran).

    python benchmarks/host_renewal.py [--enclaves 200] [--batch 16] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procstat import cpu_seconds

from cobot_security.clock import utc_now
from cobot_security.keystore import pki
from cobot_security.keystore.host_authority import bundle_host
from cobot_security.keystore.host_install import install_package
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.manifest import read_manifest
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.export import dump_policy_yaml
from cobot_security.policy.model import Enclave, GovernanceOptions, Host, Lifetimes, NodeGrants, WorkcellPolicy

REPO = Path(__file__).resolve().parent.parent
MEMBERS = ("host_a", "host_b")
_INSTALLED = re.compile(r"\[(\d+\.\d+)\].*installed renewal answer in ([0-9.]+) s: (\d+) enclave\(s\) renewed")


def synthetic_policy(count: int) -> WorkcellPolicy:
    """``count`` enclaves /bench/nNNN, alternately on host_a and host_b."""
    enclaves = tuple(Enclave(f"/bench/n{i:03d}", (NodeGrants(f"n{i:03d}", "/bench", publish=("chatter",)),),
                             hosts=(MEMBERS[i % 2],)) for i in range(count))
    hosts = (Host("ca_pc", "authority"), *(Host(name) for name in MEMBERS))
    return WorkcellPolicy(1, "bench_cell", (0,), GovernanceOptions(), Lifetimes(), enclaves, hosts=hosts)


def set_up(root: Path, policy: WorkcellPolicy, then: dt.datetime) -> None:
    """The CA keystore and a bundle installed on each member host, all made at ``then``."""
    ca = init_keystore(root / "ca", policy, then)
    pinned = ca.layout.permissions_ca_cert
    cert = pki.load_certificate(pinned.read_bytes(), pinned)
    for host in MEMBERS:
        install_package(Keystore.open_host(root / host), bundle_host(ca, policy, host, then).document, cert, pinned,
                        then, source=host, host=host)


def start(root: Path, policy_file: Path, role: str, host: str, env: dict[str, str], batch: int) -> subprocess.Popen:
    """One keystore_manager process; its log goes to ``<root>/<host>.log``."""
    params = {"keystore": root / ("ca" if role == "authority" else host), "policy": policy_file, "role": role,
              "host": host, "check_period_s": 60.0 if role == "authority" else 0.5, "period_s": 1.0,
              "max_batch": batch, "max_requests_per_minute": 100000, "request_timeout_s": 30.0}
    args = [sys.executable, "-m", "cobot_security.nodes.keystore_manager", "--ros-args",
            "-r", f"__node:=keystore_manager_{host}"]
    for key, value in params.items():
        args += ["-p", f"{key}:={value}"]
    log = open(root / f"{host}.log", "wb")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)


def renewed(root: Path, before: dict[str, dict[str, str]]) -> int:
    """How many enclaves carry a new certificate."""
    count = 0
    for host in MEMBERS:
        now = {p: r.serial for p, r in read_manifest(KeystoreLayout(root / host)).enclaves.items()}
        count += sum(1 for path, serial in before[host].items() if now.get(path) != serial)
    return count


def measure(count: int, batch: int, timeout_s: float) -> dict[str, object]:
    """Run the cell and return the figures."""
    policy = synthetic_policy(count)
    with tempfile.TemporaryDirectory(prefix="cobot-bench-hosts-") as tmp:
        root = Path(tmp)
        policy_file = root / "policy.yaml"
        policy_file.write_text(dump_policy_yaml(policy))
        started = time.perf_counter()
        set_up(root, policy, utc_now() - dt.timedelta(days=70))
        setup_s = time.perf_counter() - started
        before = {h: {p: r.serial for p, r in read_manifest(KeystoreLayout(root / h)).enclaves.items()}
                  for h in MEMBERS}
        env = dict(os.environ, ROS_DOMAIN_ID=str(140 + os.getpid() % 20), RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
                   ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
        authority = start(root, policy_file, "authority", "ca_pc", env, batch)
        procs = [authority]
        try:
            while "authority keystore_manager" not in (root / "ca_pc.log").read_text(errors="replace"):
                time.sleep(0.2)
            time.sleep(2.0)  # the authority's first reconcile (CRL refresh) is not part of the renewals
            cpu_before = cpu_seconds(authority.pid)
            procs += [start(root, policy_file, "member", host, env, batch) for host in MEMBERS]
            deadline = time.monotonic() + timeout_s
            while renewed(root, before) < count and time.monotonic() < deadline:
                time.sleep(0.2)
            cpu = cpu_seconds(authority.pid) - cpu_before
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=20)
        done = renewed(root, before)
        latencies, first, last = [], None, None
        for host in MEMBERS:
            for stamp, latency, enclaves in _INSTALLED.findall((root / f"{host}.log").read_text(errors="replace")):
                latencies += [float(latency)] * int(enclaves)
                sent = float(stamp) - float(latency)
                first = sent if first is None else min(first, sent)
                last = float(stamp) if last is None else max(last, float(stamp))
    ordered = sorted(latencies)
    return {"enclaves": count, "renewed": done, "batch": batch, "setup_s": round(setup_s, 2),
            "total_s": round((last or 0.0) - (first or 0.0), 2),
            "latency_p50_s": round(statistics.median(ordered), 3) if ordered else None,
            "latency_p99_s": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3) if ordered else None,
            "authority_cpu_s": round(cpu, 2), "authority_cpu_ms_per_renewal": round(1000 * cpu / max(done, 1), 1)}


def main() -> int:
    """Print the figures (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--enclaves", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16, help="enclaves per renewal request (member max_batch)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.enclaves, args.batch, args.timeout)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return 0
    print(f"renewal of {figures['renewed']}/{figures['enclaves']} enclaves on {len(MEMBERS)} member hosts through "
          f"the authority, {args.batch} per request (set-up {figures['setup_s']} s, not counted)")
    print(f"  total (first request -> last install)  {figures['total_s']:>8} s")
    print(f"  per-renewal latency p50 / p99          {figures['latency_p50_s']} / {figures['latency_p99_s']} s")
    print(f"  authority CPU                          {figures['authority_cpu_s']:>8} s  "
          f"({figures['authority_cpu_ms_per_renewal']} ms per renewal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
