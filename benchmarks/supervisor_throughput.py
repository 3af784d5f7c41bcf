"""Benchmark: supervisor throughput with 10 / 100 / 1000 simulated reporters at 1 Hz (figures only).

This process is the one publisher: every reporter sends one signed DiagnosticArray of
``--statuses`` statuses per second (spread over 20 ticks a second), signed with the
health_reporter enclave key of a fresh keystore under its own host name (so each is a reporter
identity the supervisor verifies: one ECDSA verification per message).  The supervisor runs as its
own process on that keystore; its statuses/s handled and accepted come from
``/supervisor/get_report`` (``statuses_received``, ``health_intake``) and its CPU from
``/proc/<pid>/stat`` (utime + stime), without psutil.

    python benchmarks/supervisor_throughput.py --reporters 10 100 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
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

from cobot_security.health.envelope import StatusRecord  # noqa: E402
from cobot_security.health.signer import SignerSource  # noqa: E402
from cobot_security.keystore.store import init_keystore  # noqa: E402
from cobot_security.nodes.convert import records_to_array  # noqa: E402
from cobot_security.policy.load import load_policy  # noqa: E402

CHECKS = ("cert_expiry", "cert_chain", "permissions_validity", "key_modes", "governance", "crl",
          "keystore_integrity", "security_env", "discovery_exposure", "enforcement_proof")
TICKS_PER_S = 20


REPORTER = "/cobot_security/health_reporter"


class SimulatedReporter:
    """One simulated reporter: its statuses (built once) signed anew for every report."""

    def __init__(self, keystore: Path, index: int, statuses: int) -> None:
        self.signer = SignerSource(keystore, REPORTER, f"/sim_reporter_{index}", f"sim-host-{index}").current()
        self.body = [StatusRecord(0, f"cobot_security/{CHECKS[j % len(CHECKS)]}/sim/enclave_{index}_{j}", "ok",
                                  self.signer.host, (("reporter", f"/sim_reporter_{index}"), ("days_left", "60")))
                     for j in range(statuses)]

    def message(self) -> DiagnosticArray:
        now = dt.datetime.now(dt.timezone.utc)
        return records_to_array(self.body + [self.signer.sign(self.body, now)], now)


class Bench(SpunNode):
    """The publisher node and a report client, spun in a background thread."""

    def __init__(self, domain: int) -> None:
        super().__init__(domain, "bench_publisher")
        self.pub = self.node.create_publisher(DiagnosticArray, "/cobot_security/health", 1000)
        self.sent_statuses = 0
        self.reporters: list[SimulatedReporter] = []
        self._tick = 0
        self.timer = None

    def start(self, reporters: list[SimulatedReporter]) -> None:
        self.reporters = reporters
        self.timer = self.node.create_timer(1.0 / TICKS_PER_S, self._publish)

    def stop(self) -> None:
        if self.timer is not None:
            self.node.destroy_timer(self.timer)
            self.timer = None

    def _publish(self) -> None:
        slot = self._tick % TICKS_PER_S
        self._tick += 1
        for reporter in self.reporters[slot::TICKS_PER_S]:
            msg = reporter.message()
            self.pub.publish(msg)
            self.sent_statuses += len(msg.status)


def run(reporters: int, statuses: int, seconds: float, domain: int, controls: Path, attestations: Path,
        keystore: Path) -> None:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    env.pop("ROS_SECURITY_ENABLE", None)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "RMW_IMPLEMENTATION", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    cmd = [sys.executable, "-m", "cobot_security.nodes.supervisor", "--ros-args",
           "-p", f"controls:={controls}", "-p", f"attestations:={attestations}", "-p", "period_s:=1.0",
           "-p", "stale_after_s:=5.0", "-p", f"keystore:={keystore}", "-p", f"incident_dir:={keystore.parent / 'inc'}",
           "-p", f"max_reporters:={max(1024, reporters + 1)}"]
    sup = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bench = Bench(domain)
    try:
        if bench.report(timeout=20) is None:
            print(f"{reporters:>9}  supervisor did not answer")
            return
        bench.start([SimulatedReporter(keystore, i, statuses) for i in range(reporters)])
        time.sleep(2.0)  # warm-up: discovery and the first full second of reports
        first = bench.report()
        sent0, cpu0, t0 = bench.sent_statuses, cpu_seconds(sup.pid), time.monotonic()
        time.sleep(seconds)
        last = bench.report()
        sent1, cpu1, t1 = bench.sent_statuses, cpu_seconds(sup.pid), time.monotonic()
        bench.stop()
        if first is None or last is None:
            print(f"{reporters:>9}  supervisor stopped answering get_report")
            return
        elapsed = t1 - t0
        handled = (last["statuses_received"] - first["statuses_received"]) / elapsed
        accepted = (last["health_intake"]["accepted_statuses"] - first["health_intake"]["accepted_statuses"]) / elapsed
        sent = (sent1 - sent0) / elapsed
        cpu = 100.0 * (cpu1 - cpu0) / elapsed
        print(f"{reporters:>9}  {sent:>10.0f}  {handled:>10.0f}  {accepted:>10.0f}  "
              f"{100 * handled / sent if sent else 0:>6.1f}%  {cpu:>7.1f}  {rss_mib(sup.pid):>8.1f}  "
              f"{len(last['reporters']):>9}  {last['evaluation_ms'].get('p99')!s:>9}")
    finally:
        bench.close()
        sup.terminate()
        try:
            sup.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sup.kill()
            sup.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reporters", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--statuses", type=int, default=10, help="statuses per reporter report")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--domain", type=int, default=140 + os.getpid() % 10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        attestations = Path(tmp) / "attestations.yaml"
        attestations.write_text("version: 1\nattestations: []\n")
        controls = REPO / "policies" / "posture_controls.yaml"
        keystore = Path(tmp) / "keystore"
        init_keystore(keystore, load_policy(REPO / "policies" / "workcell.yaml"), dt.datetime.now(dt.timezone.utc))
        print(f"host {socket.gethostname()}, {os.cpu_count()} CPUs, {args.statuses} statuses/report, "
              f"{args.seconds:.0f} s per run")
        print(f"{'reporters':>9}  {'sent st/s':>10}  {'handled/s':>10}  {'accepted/s':>10}  {'ratio':>7}  "
              f"{'cpu %':>7}  {'rss MiB':>8}  {'tracked':>9}  {'tick p99':>9}")
        for reporters in args.reporters:
            run(reporters, args.statuses, args.seconds, args.domain, controls, attestations, keystore)


if __name__ == "__main__":
    main()
