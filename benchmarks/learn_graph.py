"""Benchmark: ``policy learn`` on a graph of N nodes × 10 endpoints — observer CPU, memory, completeness.

``--processes`` worker processes each create their share of real rclpy nodes (namespace /bench),
each node with 5 publishers, 3 subscriptions, 1 service server and 1 client (10 endpoints).  Then
``cobot-security policy learn`` runs once per window in ``--windows`` (a fresh observer each time),
and we report its CPU time (utime + stime, from wait4), peak RSS and how much of the graph the
learned policy holds (nodes and endpoints found / expected).  Figures only, no assertions.

    python benchmarks/learn_graph.py --nodes 200 --windows 5,10,30 [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test"))

from ros_domains import lease_domain  # noqa: E402

from cobot_security.policy.load import load_policy  # noqa: E402
from cobot_security.policy.observation import ENDPOINT_FIELDS  # noqa: E402

ENDPOINTS_PER_NODE = 10


def run_worker(index: int, count: int) -> None:
    """Create ``count`` nodes with 10 endpoints each, print 'ready', then wait to be stopped."""
    import rclpy
    from rclpy.node import Node
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    rclpy.init()
    nodes = []
    for j in range(count):
        node = Node(f"bench_{index}_{j}", namespace="/bench")
        for k in range(5):
            node.create_publisher(String, f"~/out_{k}", 10)
        for k in range(3):
            node.create_subscription(String, f"shared_{k}", lambda _m: None, 10)
        node.create_service(Trigger, "~/reset", lambda _r, s: s)
        node.create_client(Trigger, "shared_reset")
        nodes.append(node)
    print("ready", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()


def _learn(window: float, domain: int, env: dict[str, str], output: Path) -> dict[str, float]:
    script = Path(sys.executable).parent / "cobot-security"
    proc = subprocess.Popen([str(script), "policy", "learn", "--duration", str(window), "--domain-id", str(domain),
                             "-o", str(output), "--force"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    started = time.monotonic()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "cpu_percent_of_one_core": round(100 * (usage.ru_utime + usage.ru_stime) / wall, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "exit_code": proc.returncode}


def _completeness(output: Path, expected_nodes: int) -> dict[str, float]:
    policy = load_policy(output)
    nodes = [n for e in policy.enclaves for n in e.nodes if n.namespace == "/bench"]
    endpoints = sum(len(getattr(n, kind)) for n in nodes for kind in ENDPOINT_FIELDS)
    expected = expected_nodes * ENDPOINTS_PER_NODE
    return {"nodes_found": len(nodes), "endpoints_found": endpoints,
            "nodes_percent": round(100 * len(nodes) / expected_nodes, 1),
            "endpoints_percent": round(100 * endpoints / expected, 1)}


def main() -> None:
    """Start the workers, learn once per window, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--windows", default="5,10,30", help="comma-separated learning windows [s]")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        run_worker(args.worker, args.count)
        return
    lease = lease_domain()
    env = dict(os.environ, ROS_DOMAIN_ID=str(lease.domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
    for key in ("ROS_SECURITY_ENABLE", "ROS_SECURITY_STRATEGY", "ROS_SECURITY_KEYSTORE"):
        env.pop(key, None)
    per = [args.nodes // args.processes + (1 if i < args.nodes % args.processes else 0) for i in range(args.processes)]
    workers = [subprocess.Popen([sys.executable, __file__, "--worker", str(i), "--count", str(n)], env=env,
                                stdout=subprocess.PIPE, text=True) for i, n in enumerate(per)]
    results = []
    try:
        started = time.monotonic()
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        startup = time.monotonic() - started
        with tempfile.TemporaryDirectory() as tmp:
            for window in (float(w) for w in args.windows.split(",")):
                output = Path(tmp) / f"learned-{window:g}.yaml"
                figures = _learn(window, lease.domain_id, env, output)
                if figures["exit_code"] == 0:
                    figures.update(_completeness(output, args.nodes))
                results.append({"window_s": window, **figures})
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGINT)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        lease.release()
    summary = {"nodes": args.nodes, "endpoints_per_node": ENDPOINTS_PER_NODE, "processes": args.processes,
               "graph_startup_s": round(startup, 1), "windows": results}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"graph: {args.nodes} nodes x {ENDPOINTS_PER_NODE} endpoints in {args.processes} processes "
          f"(created in {startup:.1f} s)")
    print("window  wall   observer cpu  (% of a core)  peak RSS  nodes found  endpoints found")
    for r in results:
        print(f"{r['window_s']:5g} s {r['wall_s']:5.1f} s {r['cpu_s']:8.2f} s  {r['cpu_percent_of_one_core']:9.1f} %"
              f"  {r['peak_rss_mib']:6.1f} MiB  {r.get('nodes_percent', 0):9.1f} %"
              f"  {r.get('endpoints_percent', 0):11.1f} %")


if __name__ == "__main__":
    main()
