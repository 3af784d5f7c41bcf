"""Helpers shared by the node tests: process control, a listening rclpy node, status accessors."""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger

from cobot_security.policy.export import dump_policy_yaml
from cobot_security.policy.load import load_policy

REPO = Path(__file__).resolve().parent.parent.parent
POLICIES = REPO / "policies"
EXAMPLE_POLICY = POLICIES / "workcell.yaml"


def _on_one_machine(source: Path) -> Path:
    """The example cell as these tests run it: every node on this machine (its hosts: removed)."""
    target = Path(tempfile.mkdtemp(prefix="cobot-node-tests-")) / "workcell.yaml"
    atexit.register(shutil.rmtree, target.parent, True)
    target.write_text(dump_policy_yaml(load_policy(source).on_one_machine(), header=f"{source} on one machine"))
    return target


WORKCELL = _on_one_machine(EXAMPLE_POLICY)
CONTROLS = POLICIES / "posture_controls.yaml"
_MODULES = {
    "health_reporter": "cobot_security.nodes.health_reporter",
    "supervisor": "cobot_security.nodes.supervisor",
}


def utc_now() -> dt.datetime:
    """The real wall clock (the node processes run on it)."""
    return dt.datetime.now(dt.timezone.utc)


def node_command(name: str) -> list[str]:
    """The installed console script beside the interpreter, else ``python -m`` the module."""
    script = Path(sys.executable).parent / name
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", _MODULES[name]]


class NodeProcess:
    """A node started from its console script; its output goes to a log file."""

    def __init__(self, name: str, params: dict[str, object], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}-{len(list(log_dir.glob(name + '-*.log')))}.log"
        cmd = node_command(name) + ["--ros-args"]
        for key, value in params.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, float):
                text = repr(value)
            else:
                text = str(value)
            cmd += ["-p", f"{key}:={text}"]
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, cwd=str(log_dir), stdout=self._log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int | None:
        """Signal the process and wait; SIGKILL if it does not exit in ``timeout``."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if not self._log_file.closed:
            self._log_file.close()
        return self.proc.returncode


class Listener:
    """A test-side rclpy node in its own Context, spun in a background thread."""

    def __init__(self, domain: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("test_listener", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.messages: dict[str, list] = {}
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutdown races end the loop
                if not self.context.ok():
                    break

    def subscribe(self, topic: str, msg_type: type = DiagnosticArray, qos: int = 100) -> None:
        self.messages.setdefault(topic, [])

        def callback(msg: object) -> None:
            with self._lock:
                self.messages[topic].append(msg)
            self._event.set()

        self.node.create_subscription(msg_type, topic, callback, qos)

    def received(self, topic: str) -> list:
        with self._lock:
            return list(self.messages.get(topic, []))

    def wait_for(self, predicate: Callable[[], object], timeout: float) -> object:
        """The first truthy value of ``predicate()`` (re-checked on every message), or None."""
        deadline = time.monotonic() + timeout
        while True:
            self._event.clear()
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._event.wait(min(remaining, 0.5))

    def call_trigger(self, service: str, timeout: float) -> Trigger.Response | None:
        """Call a std_srvs/Trigger service with bounded waits; None when it did not answer."""
        client = self.node.create_client(Trigger, service)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                return None
            done = threading.Event()
            future = client.call_async(Trigger.Request())
            future.add_done_callback(lambda _f: done.set())
            if not done.wait(timeout):
                return None
            return future.result()
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self.context.try_shutdown()
        self._thread.join(timeout=5)
        self.executor.shutdown(timeout_sec=1)
        self.node.destroy_node()


def statuses(msg: DiagnosticArray) -> dict[str, object]:
    """Status name → status of one array."""
    return {s.name: s for s in msg.status}


def level(status: object) -> int:
    """The integer level of a DiagnosticStatus."""
    raw = status.level
    return raw[0] if isinstance(raw, (bytes, bytearray)) else int(raw)


def values(status: object) -> dict[str, str]:
    """Key → value of a DiagnosticStatus."""
    return {kv.key: kv.value for kv in status.values}


def report_json(response: Trigger.Response) -> dict:
    """The get_report body."""
    return json.loads(response.message)


class SignedSender:
    """Builds health arrays signed with an enclave's key from ``keystore`` (a reporter in the test process)."""

    def __init__(self, keystore: Path, enclave: str = "/cobot_security/health_reporter",
                 node: str = "/health_reporter", host: str = "testhost") -> None:
        from cobot_security.health.signer import SignerSource

        self.host = host
        self.source = SignerSource(keystore, enclave, node, host)

    def array(self, records: list) -> DiagnosticArray:
        """``records`` (StatusRecords; their hardware_id is set to this host) with the signature status last."""
        import dataclasses

        from cobot_security.nodes.convert import records_to_array

        body = [dataclasses.replace(r, hardware_id=self.host) for r in records]
        now = utc_now()
        return records_to_array(body + [self.source.current().sign(body, now)], now)


def make_keystore(root: Path, issued_at: dt.datetime, policy_path: Path = WORKCELL) -> Path:
    """A keystore for ``policy_path`` issued at ``issued_at``."""
    from cobot_security.keystore.store import init_keystore
    from cobot_security.policy.load import load_policy

    init_keystore(root, load_policy(policy_path), issued_at)
    return root


