"""Benchmark: the supervisor under a hostile flood of forged and malformed health (figures only).

For each scenario, a fresh real supervisor and a real health_reporter (signing with its enclave
key) run on a fresh keystore for the example cell; then ``--publishers`` hostile processes
(hostile_publisher.py, ``flood`` mode) publish as fast as they can for ``--seconds``:

* ``small``: forged signatures, malformed statuses and unsigned messages naming 10 invented
  reporters each: the highest message rate one local publisher reaches;
* ``large``: unsigned messages naming 1000 invented reporters (the issue's flood), messages over
  the size limit (20,000 statuses) and over the statuses-per-message limit (2,000);
* ``stolen_key``: messages signed with the stolen health_reporter key under ever new invented
  hosts: each verifies, so this measures the reporter cap (``--max-reporters``).

Measured, before and during the flood:

* posture rate: /cobot_security/posture messages per second at this process, and the p99 gap;
* p99 tick latency: the supervisor's own evaluate-and-publish durations (get_report ``evaluation_ms``);
* supervisor RSS (VmRSS) and CPU from /proc; what the flood sent and what the supervisor dropped;
* whether the genuine reporter was still accepted (its messages counted) and reporters stayed capped.

    python benchmarks/supervisor_flood.py --seconds 30 --publishers 1 [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_node import SpunNode
from diagnostic_msgs.msg import DiagnosticArray
from procstat import cpu_seconds, rss_mib

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cobot_security.keystore.store import init_keystore  # noqa: E402
from cobot_security.policy.load import load_policy  # noqa: E402

POLICY = REPO / "policies" / "workcell.yaml"
CONTROLS = REPO / "policies" / "posture_controls.yaml"


def percentile(values: list[float], percent: int) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * percent / 100) - 1)] if ordered else None


class Watcher(SpunNode):
    """Counts posture messages (arrival times) and calls get_report, spun in a thread."""

    def __init__(self, domain: int) -> None:
        super().__init__(domain, "flood_watcher")
        self.arrivals: list[float] = []
        self.node.create_subscription(DiagnosticArray, "/cobot_security/posture",
                                      lambda _m: self.arrivals.append(time.monotonic()), 100)

    def window(self, start: float, end: float) -> dict[str, float | None]:
        times = [t for t in self.arrivals if start <= t < end]
        gaps = [b - a for a, b in zip(times, times[1:])]
        return {"posture_per_s": round(len(times) / (end - start), 3),
                "gap_p99_s": round(percentile(gaps, 99), 3) if gaps else None,
                "gap_max_s": round(max(gaps), 3) if gaps else None}


def tick_latency(report: dict, start_unix: float, end_unix: float) -> dict[str, float | None]:
    samples = [ms for when, ms in report["evaluation_ms"]["recent"] if start_unix <= when < end_unix]
    return {"ticks": len(samples), "tick_p50_ms": percentile(samples, 50), "tick_p99_ms": percentile(samples, 99),
            "tick_max_ms": max(samples) if samples else None}


def start(module: str, params: dict[str, object], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", module, "--ros-args"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


#: Scenario → (flood kinds, invented reporters per unsigned message).
SCENARIOS = {
    "small": ("forged_signature,malformed,invented", 10),
    "large": ("invented,oversized,too_many", 1000),
    "stolen_key": ("stolen_key", 0),
}


def measure(args: argparse.Namespace, scenario: str, work: Path, env: dict[str, str]) -> dict:
    kinds, invented = SCENARIOS[scenario]
    keystore = work / "keystore"
    init_keystore(keystore, load_policy(POLICY), dt.datetime.now(dt.timezone.utc))
    common = {"keystore": keystore, "policy": POLICY, "period_s": args.period}
    sup = start("cobot_security.nodes.supervisor", {**common, "controls": CONTROLS, "incident_dir": work / "inc",
                                                    "max_reporters": args.max_reporters},
                env, work / "supervisor.log")
    rep = start("cobot_security.nodes.health_reporter", common, env, work / "reporter.log")
    watcher = Watcher(args.domain)
    floods: list[subprocess.Popen[str]] = []
    try:
        if watcher.report() is None:
            raise SystemExit(f"the supervisor did not answer; see {work / 'supervisor.log'}")
        time.sleep(args.baseline)
        t0, u0, cpu0, rss0 = time.monotonic(), time.time(), cpu_seconds(sup.pid), rss_mib(sup.pid)
        before = watcher.report()
        floods = [subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "hostile_publisher.py"), "--mode",
                                    "flood", "--seconds", str(args.seconds), "--keystore", str(keystore),
                                    "--invented", str(invented), "--kinds", kinds],
                                   env=env, stdout=subprocess.PIPE, text=True)
                  for _ in range(args.publishers)]
        peak_rss = rss0
        while any(f.poll() is None for f in floods):
            peak_rss = max(peak_rss, rss_mib(sup.pid))
            time.sleep(0.5)
        t1, u1, cpu1 = time.monotonic(), time.time(), cpu_seconds(sup.pid)
        after = watcher.report()
        if before is None or after is None:
            raise SystemExit("the supervisor stopped answering get_report")
        sent: dict[str, int] = {}
        for flood in floods:
            for kind, n in json.loads(flood.communicate()[0].strip().splitlines()[-1])["sent"].items():
                sent[kind] = sent.get(kind, 0) + n
        flooded = t1 - t0
        return {
            "scenario": scenario, "period_s": args.period, "flood_seconds": round(flooded, 1),
            "publishers": args.publishers,
            "sent_per_s": round(sum(sent.values()) / flooded), "sent": sent,
            "baseline": {**watcher.window(t0 - args.baseline, t0), **tick_latency(after, u0 - args.baseline, u0),
                         "rss_mib": round(rss0, 1)},
            "flood": {**watcher.window(t0, t1), **tick_latency(after, u0, u1),
                      "rss_mib_end": round(rss_mib(sup.pid), 1),
                      "rss_mib_peak": round(peak_rss, 1), "cpu_percent": round(100 * (cpu1 - cpu0) / flooded, 1)},
            "dropped_messages": after["health_intake"]["dropped_messages"],
            "accepted_during_flood": (after["health_intake"]["accepted_messages"]
                                      - before["health_intake"]["accepted_messages"]),
            "reporters": len(after["reporters"]), "max_reporters": args.max_reporters,
            "incidents_suppressed": after.get("incidents_suppressed"),
        }
    finally:
        for proc in [*floods, rep, sup]:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        watcher.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="flood duration")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds measured before the flood")
    parser.add_argument("--publishers", type=int, default=1, help="hostile publisher processes")
    parser.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--period", type=float, default=1.0, help="supervisor period_s")
    parser.add_argument("--max-reporters", type=int, default=1024)
    parser.add_argument("--domain", type=int, default=150 + os.getpid() % 20)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain), RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    for key in ("ROS_SECURITY_ENABLE", "ROS_SECURITY_ENCLAVE_OVERRIDE"):
        env.pop(key, None)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "RMW_IMPLEMENTATION", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    results = []
    for scenario in args.scenarios:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(measure(args, scenario, Path(tmp), env))
    if args.json:
        print(json.dumps({"host_cpus": os.cpu_count(), "scenarios": results}, sort_keys=True))
        return
    print(f"{os.cpu_count()} CPUs, supervisor period {args.period} s, {args.publishers} hostile publisher(s), "
          f"{args.seconds:g} s flood per scenario after {args.baseline:g} s baseline")
    print(f"{'scenario':>10}  {'phase':>8}  {'msgs/s in':>9}  {'posture/s':>9}  {'gap p99 s':>9}  "
          f"{'tick p50 ms':>11}  {'tick p99 ms':>11}  {'RSS MiB':>8}  {'cpu %':>6}")
    for result in results:
        base, flood = result["baseline"], result["flood"]
        print(f"{result['scenario']:>10}  {'baseline':>8}  {0:>9}  {base['posture_per_s']:>9}  "
              f"{base['gap_p99_s']!s:>9}  {base['tick_p50_ms']!s:>11}  {base['tick_p99_ms']!s:>11}  "
              f"{base['rss_mib']:>8}  {'':>6}")
        print(f"{'':>10}  {'flood':>8}  {result['sent_per_s']:>9}  {flood['posture_per_s']:>9}  "
              f"{flood['gap_p99_s']!s:>9}  {flood['tick_p50_ms']!s:>11}  {flood['tick_p99_ms']!s:>11}  "
              f"{flood['rss_mib_end']:>8}  {flood['cpu_percent']:>6}")
    for result in results:
        print(f"{result['scenario']}: peak RSS {result['flood']['rss_mib_peak']} MiB; dropped "
              f"{result['dropped_messages']}; accepted during the flood {result['accepted_during_flood']}; "
              f"reporters {result['reporters']} (max {result['max_reporters']}); incident openings suppressed "
              f"{result['incidents_suppressed']}")


if __name__ == "__main__":
    main()
