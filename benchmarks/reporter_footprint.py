"""Benchmark: health_reporter CPU and RSS at 1 Hz over ~10 s against the example cell (figures only).

A keystore for ``policies/workcell.yaml`` is created in a temporary directory, the reporter runs as
its own process (graph checks on), and CPU (utime + stime) and RSS are read from /proc/<pid>.

    python benchmarks/reporter_footprint.py --seconds 10
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procstat import cpu_seconds, rss_mib

from cobot_security.clock import utc_now
from cobot_security.keystore.store import init_keystore
from cobot_security.policy.load import load_policy

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "policies" / "workcell.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--domain", type=int, default=130 + os.getpid() % 10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        keystore = Path(tmp) / "keystore"
        init_keystore(keystore, load_policy(POLICY), utc_now())
        env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain), RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
                   ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
        env.pop("ROS_SECURITY_ENABLE", None)
        cmd = [sys.executable, "-m", "cobot_security.nodes.health_reporter", "--ros-args",
               "-p", f"keystore:={keystore}", "-p", f"policy:={POLICY}", "-p", f"period_s:={args.period}"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3.0)  # start-up (imports, first probes) is not steady state
            start_cpu, start_t, start_rss = cpu_seconds(proc.pid), time.monotonic(), rss_mib(proc.pid)
            samples = []
            deadline = start_t + args.seconds
            while time.monotonic() < deadline:
                time.sleep(1.0)
                samples.append(rss_mib(proc.pid))
            cpu = 100.0 * (cpu_seconds(proc.pid) - start_cpu) / (time.monotonic() - start_t)
            ticks = args.seconds / args.period
            print(f"health_reporter at {1 / args.period:.1f} Hz over {args.seconds:.0f} s, "
                  f"{len(load_policy(POLICY).enclaves)} enclaves, graph checks on")
            print(f"  CPU            {cpu:6.2f} %  (~{cpu * args.period * 10:.1f} ms of CPU per report)")
            print(f"  RSS start/max  {start_rss:6.1f} / {max(samples):6.1f} MiB")
            print(f"  reports        ~{ticks:.0f}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
