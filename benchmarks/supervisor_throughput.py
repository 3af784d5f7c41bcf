"""Benchmark: supervisor throughput with 10 / 100 / 1000 simulated reporters at 1 Hz (figures only).

This process is the one publisher: every reporter sends one DiagnosticArray of ``--statuses``
statuses per second (spread over 20 ticks a second).  The supervisor runs as its own process; its
statuses/s handled come from ``/supervisor/get_report`` (``statuses_received``) and its CPU from
``/proc/<pid>/stat`` (utime + stime), without psutil.

    python benchmarks/supervisor_throughput.py --reporters 10 100 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from procstat import cpu_seconds, rss_mib
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger

REPO = Path(__file__).resolve().parent.parent
CHECKS = ("cert_expiry", "cert_chain", "permissions_validity", "key_modes", "governance", "crl",
          "keystore_integrity", "security_env", "discovery_exposure", "enforcement_proof")
TICKS_PER_S = 20


def reporter_message(index: int, statuses: int) -> DiagnosticArray:
    """One simulated reporter's report (built once, re-sent every second)."""
    host = f"sim-host-{index % 50}"
    msg = DiagnosticArray()
    for j in range(statuses):
        check = CHECKS[j % len(CHECKS)]
        msg.status.append(DiagnosticStatus(
            level=b"\x00", name=f"cobot_security/{check}/sim/enclave_{index}_{j}", message="ok",
            hardware_id=host, values=[KeyValue(key="reporter", value=f"/sim_reporter_{index}"),
                                      KeyValue(key="days_left", value="60")]))
    return msg


class Bench:
    """The publisher node and a report client, spun in a background thread."""

    def __init__(self, domain: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("bench_publisher", context=self.context)
        self.pub = self.node.create_publisher(DiagnosticArray, "/cobot_security/health", 1000)
        self.client = self.node.create_client(Trigger, "/supervisor/get_report")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.sent_statuses = 0
        self.messages: list[DiagnosticArray] = []
        self._tick = 0
        self.timer = None
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutdown race
                break

    def start(self, messages: list[DiagnosticArray]) -> None:
        self.messages = messages
        self.timer = self.node.create_timer(1.0 / TICKS_PER_S, self._publish)

    def stop(self) -> None:
        if self.timer is not None:
            self.node.destroy_timer(self.timer)
            self.timer = None

    def _publish(self) -> None:
        slot = self._tick % TICKS_PER_S
        self._tick += 1
        for msg in self.messages[slot::TICKS_PER_S]:
            self.pub.publish(msg)
            self.sent_statuses += len(msg.status)

    def report(self, timeout: float = 10.0) -> dict | None:
        if not self.client.wait_for_service(timeout_sec=timeout):
            return None
        done = threading.Event()
        future = self.client.call_async(Trigger.Request())
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            return None
        return json.loads(future.result().message)

    def close(self) -> None:
        self.context.try_shutdown()
        self.thread.join(timeout=5)


def run(reporters: int, statuses: int, seconds: float, domain: int, controls: Path, attestations: Path) -> None:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    env.pop("ROS_SECURITY_ENABLE", None)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "RMW_IMPLEMENTATION", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    cmd = [sys.executable, "-m", "cobot_security.nodes.supervisor", "--ros-args",
           "-p", f"controls:={controls}", "-p", f"attestations:={attestations}", "-p", "period_s:=1.0",
           "-p", "stale_after_s:=5.0"]
    sup = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bench = Bench(domain)
    try:
        if bench.report(timeout=20) is None:
            print(f"{reporters:>9}  supervisor did not answer")
            return
        bench.start([reporter_message(i, statuses) for i in range(reporters)])
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
        sent = (sent1 - sent0) / elapsed
        cpu = 100.0 * (cpu1 - cpu0) / elapsed
        print(f"{reporters:>9}  {sent:>10.0f}  {handled:>10.0f}  {100 * handled / sent if sent else 0:>6.1f}%"
              f"  {cpu:>7.1f}  {rss_mib(sup.pid):>8.1f}  {len(last['reporters']):>9}")
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
        print(f"host {socket.gethostname()}, {os.cpu_count()} CPUs, {args.statuses} statuses/report, "
              f"{args.seconds:.0f} s per run")
        print(f"{'reporters':>9}  {'sent st/s':>10}  {'handled/s':>10}  {'ratio':>7}  {'cpu %':>7}  "
              f"{'rss MiB':>8}  {'tracked':>9}")
        for reporters in args.reporters:
            run(reporters, args.statuses, args.seconds, args.domain, controls, attestations)


if __name__ == "__main__":
    main()
