"""Benchmark: latency from a health change to the supervisor's posture alert (p50/p99; figures only).

This process plays a reporter: it publishes a ``cert_expiry`` status at ``--rate`` Hz and flips its
level OK <-> ERROR every ``--flip-every`` seconds.  A real supervisor process (one control that
reads ``cert_expiry``) evaluates every ``--period`` seconds with its default hysteresis
(confirm_count 2), and we time each flip until the matching transition on /cobot_security/alerts.

    python benchmarks/detection_latency.py --flips 20 --period 0.1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

CATALOG = """\
version: 1
controls:
  - id: certificate_lifetime
    title: Certificates are valid
    priority: high
    references: ["IEC 62443-3-3 SR 1.8"]
    checks: [cert_expiry]
"""


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def main() -> None:
    """Start the supervisor, flip the health level, print latency figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flips", type=int, default=20)
    parser.add_argument("--period", type=float, default=0.1, help="supervisor evaluation period [s]")
    parser.add_argument("--rate", type=float, default=20.0, help="health messages per second")
    parser.add_argument("--flip-every", type=float, default=1.5)
    parser.add_argument("--domain", type=int, default=197)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cobot-latency-"))
    (tmp / "controls.yaml").write_text(CATALOG)
    (tmp / "attestations.yaml").write_text("version: 1\nattestations: []\n")
    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    os.environ.update(ROS_DOMAIN_ID=str(args.domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "cobot_security.nodes.supervisor", "--ros-args",
         "-p", f"controls:={tmp / 'controls.yaml'}", "-p", f"attestations:={tmp / 'attestations.yaml'}",
         "-p", f"period_s:={args.period}", "-p", "stale_after_s:=5.0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    rclpy.init()
    node = rclpy.create_node("latency_probe")
    pub = node.create_publisher(DiagnosticArray, "/cobot_security/health", 10)
    state = {"level": 0, "flipped_at": 0.0}
    latencies: list[float] = []
    arrived = threading.Event()

    def on_alert(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith("/certificate_lifetime") and status.level[0] == (2 if state["level"] else 0):
                if state["flipped_at"] and not arrived.is_set():
                    latencies.append(time.monotonic() - state["flipped_at"])
                    arrived.set()

    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(DiagnosticArray, "/cobot_security/alerts", on_alert, qos)

    def publish() -> None:
        level = state["level"]
        msg = DiagnosticArray()
        msg.status = [DiagnosticStatus(level=bytes([2 if level else 0]), name="cobot_security/cert_expiry/bench/a",
                                       message="expired" if level else "ok", hardware_id="bench",
                                       values=[KeyValue(key="reporter", value="/bench_reporter")])]
        pub.publish(msg)

    node.create_timer(1.0 / args.rate, publish)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        time.sleep(4.0)  # discovery and the first (OK) evaluation
        for _ in range(args.flips):
            arrived.clear()
            state["level"] = 1 - state["level"]
            state["flipped_at"] = time.monotonic()
            arrived.wait(timeout=10.0)
            time.sleep(args.flip_every)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()
        supervisor.terminate()
        supervisor.wait(timeout=10)
    if not latencies:
        print("no alert observed")
        return
    print(f"supervisor period {args.period:.2f} s, confirm_count 2, health at {args.rate:.0f} Hz")
    print(f"transitions timed: {len(latencies)}/{args.flips}")
    print(f"detection latency p50 {1000 * statistics.median(latencies):.0f} ms, "
          f"p99 {1000 * percentile(latencies, 0.99):.0f} ms, max {1000 * max(latencies):.0f} ms")


if __name__ == "__main__":
    main()
