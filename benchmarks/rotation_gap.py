"""Samples a subscriber misses while its publisher's enclave is rotated and the publisher restarted.

Run: ``python benchmarks/rotation_gap.py [--repeats N] [--rate HZ] [--domain ID]``; prints figures,
asserts nothing.  Real DDS Security on loopback, one process per participant: a listener on the
self-test listener enclave and a talker (``python -m cobot_security.dds.agent``) on the talker
enclave of a throwaway keystore.  Each round, while samples flow, the talker enclave is rotated
(``rotate_enclaves``, reason "requested"), then the running talker is stopped and a new one started
on the rotated files (a rolling restart).  The gap is measured on the listener, from the last sample
of the old talker to the first of the new one.

The agent reports only the first sample from each sender, so the listener here is this script's
own (``--listen``): the same wire type and QoS as the agent, printing every sample with its
``time.monotonic()`` (CLOCK_MONOTONIC, comparable across processes on Linux).
"""

# No ``from __future__ import annotations``: cyclonedds resolves IdlStruct field types at class creation.

import argparse
import datetime as dt
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cobot_security.dds.runner import agent_environment  # noqa: E402
from cobot_security.dds.verify import self_test_policy  # noqa: E402
from cobot_security.keystore.rotation import RotationItem, rotate_enclaves  # noqa: E402
from cobot_security.keystore.store import Keystore, init_keystore  # noqa: E402
from cobot_security.policy.model import WorkcellPolicy  # noqa: E402

TOPIC = "rt/selftest/chatter"
TALKER, LISTENER = "/selftest/talker", "/selftest/listener"


def listen(spec: dict[str, Any]) -> int:
    """Listener process: print ``{"t", "sender", "seq"}`` for every sample until stdin closes."""
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.idl import IdlStruct
    from cyclonedds.qos import Policy, Qos
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic
    from cyclonedds.util import duration

    from cobot_security.dds.properties import security_properties

    @dataclass
    class String_(IdlStruct, typename="std_msgs::msg::dds_::String_"):
        """The agent's wire type (std_msgs/String under rmw's naming)."""

        data: str

    props = security_properties(Path(spec["enclave_dir"]))
    participant = DomainParticipant(int(spec["domain_id"]), qos=Qos(*[Policy.Property(k, v) for k, v in props]))
    qos = Qos(Policy.Reliability.Reliable(max_blocking_time=duration(seconds=1)), Policy.History.KeepLast(8))
    reader = DataReader(participant, Topic(participant, spec["topic"], String_), qos=qos)
    print(json.dumps({"event": "ready", "t": time.monotonic()}), flush=True)
    while True:
        for sample in reader.take(64):
            now = time.monotonic()
            sender, seq = (getattr(sample, "data", "").split("|") + ["", ""])[:2]
            print(json.dumps({"event": "sample", "t": now, "sender": sender, "seq": seq}), flush=True)
        ready, _, _ = select.select([sys.stdin], [], [], float(spec.get("poll_s", 0.002)))
        if ready and not sys.stdin.readline():
            return 0


class Listener:
    """The listener process and every sample it reported, as (monotonic time, sender, sequence)."""

    def __init__(self, enclave_dir: Path, domain: int, env: dict[str, str], stderr: IO[bytes]) -> None:
        """Start the listener process and a thread reading its lines."""
        spec = {"enclave_dir": str(enclave_dir), "domain_id": domain, "topic": TOPIC}
        self.proc = subprocess.Popen([sys.executable, __file__, "--listen", json.dumps(spec)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.samples: list[tuple[float, str, int]] = []
        self.ready = False
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.changed:
                if event.get("event") == "ready":
                    self.ready = True
                elif event.get("event") == "sample":
                    self.samples.append((float(event["t"]), str(event["sender"]), int(event["seq"] or -1)))
                self.changed.notify_all()
        with self.changed:
            self.ready = True
            self.changed.notify_all()

    def wait_for(self, sender: str, count: int, timeout_s: float) -> bool:
        """Wait until ``count`` samples from ``sender`` have arrived."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while sum(1 for s in self.samples if s[1] == sender) < count:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return False
                self.changed.wait(timeout=min(left, 0.2))
        return True

    def of(self, sender: str) -> list[tuple[float, str, int]]:
        """Samples from ``sender`` so far."""
        with self.changed:
            return [s for s in self.samples if s[1] == sender]

    def stop(self) -> None:
        """Close stdin (the listener's stop signal) and reap the process."""
        _stop(self.proc)
        self.thread.join(timeout=5)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin:
        try:
            proc.stdin.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def start_talker(name: str, enclave_dir: Path, domain: int, rate_hz: float, env: dict[str, str],
                 stderr: IO[bytes], ready: list[float] | None = None) -> subprocess.Popen[str]:
    """The package's own agent as the talker; ``ready`` gets the time it reports its writer created."""
    payload = {"name": name, "domain_id": domain, "enclave_dir": str(enclave_dir), "writers": [TOPIC],
               "readers": [], "marker": "", "period_s": 1.0 / rate_hz, "deadline_s": 600.0}
    proc = subprocess.Popen([sys.executable, "-m", "cobot_security.dds.agent", json.dumps(payload)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if ready is not None and '"event": "ready"' in line:
                ready.append(time.monotonic())

    threading.Thread(target=pump, daemon=True).start()
    return proc


@dataclass(frozen=True)
class Round:
    """One rotation + rolling restart, in seconds (times from the listener's clock)."""

    rotation_s: float
    samples_after_rotation: int  #: from the old talker, between the rotation's start and its stop
    gap_s: float
    stop_s: float  #: closing the old talker's stdin → its process exited
    start_to_first_s: float  #: spawning the new talker → its first sample at the listener
    start_to_ready_s: float  #: spawning the new talker → participant and writer created (agent "ready")


def run_round(index: int, keystore: Keystore, policy: WorkcellPolicy, listener: Listener,
              old: subprocess.Popen[str], domain: int, rate_hz: float, env: dict[str, str],
              stderr: IO[bytes]) -> tuple[Round, subprocess.Popen[str]]:
    """Rotate the talker enclave while ``old`` talks, restart it, measure; returns the new talker."""
    old_name, new_name = f"talker{index}", f"talker{index + 1}"
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)  # the plugins use the real clock
    start = time.monotonic()
    rotate_enclaves(keystore, policy, [RotationItem(TALKER, "requested", None, None)], now)
    rotated_at = time.monotonic()
    time.sleep(0.5)  # samples keep flowing from the old process, which loaded its files at start
    stop_at = time.monotonic()
    _stop(old)
    stopped_at = time.monotonic()
    ready: list[float] = []
    spawn_at = time.monotonic()
    new = start_talker(new_name, keystore.layout.enclave_dir(TALKER), domain, rate_hz, env, stderr, ready)
    if not listener.wait_for(new_name, 1, 60.0):
        raise SystemExit(f"round {index}: no sample from the restarted talker within 60 s")
    time.sleep(0.1)  # the talker's "ready" line may be read just after the listener's sample
    ready_at = ready[0] if ready else float("nan")
    during = sum(1 for t, _, _ in listener.of(old_name) if start <= t <= stop_at)
    last_old = listener.of(old_name)[-1]
    first_new = listener.of(new_name)[0]
    round_ = Round(rotated_at - start, during, first_new[0] - last_old[0], stopped_at - stop_at,
                   first_new[0] - spawn_at, ready_at - spawn_at)
    return round_, new


def measure(repeats: int, rate_hz: float, domain: int) -> list[Round]:
    """Build a throwaway keystore, start listener and talker, and run ``repeats`` rounds."""
    policy = self_test_policy(domain)
    env = agent_environment()
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="cobot-gap-") as tmp, open(Path(tmp) / "stderr.log", "wb") as err:
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        keystore = init_keystore(Path(tmp) / "ks", policy, now)
        listener = Listener(keystore.layout.enclave_dir(LISTENER), domain, env, err)
        talker = start_talker("talker0", keystore.layout.enclave_dir(TALKER), domain, rate_hz, env, err)
        try:
            for index in range(repeats):
                if not listener.wait_for(f"talker{index}", 10, 60.0):
                    err.flush()
                    tail = (Path(tmp) / "stderr.log").read_text(errors="replace")[-800:]
                    raise SystemExit(f"round {index}: samples do not flow; agent stderr:\n{tail}")
                round_, talker = run_round(index, keystore, policy, listener, talker, domain, rate_hz, env, err)
                print(f"  round {index + 1}: rotation {round_.rotation_s * 1000:.0f} ms "
                      f"(then {round_.samples_after_rotation} samples from the old talker), "
                      f"gap {round_.gap_s * 1000:.0f} ms "
                      f"(stop {round_.stop_s * 1000:.0f} ms, spawn→first sample "
                      f"{round_.start_to_first_s * 1000:.0f} ms, of which spawn→ready "
                      f"{round_.start_to_ready_s * 1000:.0f} ms)", flush=True)
                rounds.append(round_)
        finally:
            _stop(talker)
            listener.stop()
    return rounds


def _stats(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{label:<28} {min(ms):>8.0f} {statistics.median(ms):>8.0f} {max(ms):>8.0f}"


def main(argv: list[str]) -> int:
    """Print per-round figures, then min/median/max over the rounds."""
    if argv[:1] == ["--listen"]:
        return listen(json.loads(argv[1]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20.0, help="talker rate in Hz (default 20)")
    parser.add_argument("--domain", type=int, default=200 + os.getpid() % 30, help="DDS domain id")
    args = parser.parse_args(argv)
    print(f"rotation gap: {args.repeats} rounds, talker at {args.rate:g} Hz, domain {args.domain}, loopback")
    rounds = measure(args.repeats, args.rate, args.domain)
    print(f"{'(ms)':<28} {'min':>8} {'median':>8} {'max':>8}")
    print(_stats("gap (last old → first new)", [r.gap_s for r in rounds]))
    print(_stats("rotation (rotate_enclaves)", [r.rotation_s for r in rounds]))
    print(_stats("old talker stop", [r.stop_s for r in rounds]))
    print(_stats("spawn → first new sample", [r.start_to_first_s for r in rounds]))
    print(_stats("  of which spawn → ready", [r.start_to_ready_s for r in rounds]))
    print(f"period at {args.rate:g} Hz: {1000 / args.rate:.0f} ms; a gap of g ms misses about "
          f"g / {1000 / args.rate:.0f} - 1 samples")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
