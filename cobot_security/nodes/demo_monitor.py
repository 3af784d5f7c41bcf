"""The demo's own rclpy node: posture and alerts in, restart requests out, Trigger service calls.

It runs in a private context with a spinning thread so that the demo's scenario loop stays plain
Python; the demo (:mod:`cobot_security.demo.runner`) reads :meth:`DemoMonitor.snapshot`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_srvs.srv import Trigger

from cobot_security.clock import utc_now
from cobot_security.launch_plan.restart import restart_requests
from cobot_security.nodes.convert import byte_to_level
from cobot_security.posture.view import PostureView
from cobot_security.status import Level

__all__ = ["DemoMonitor"]


def _level(status: Any) -> Level:
    """A status's level; anything but OK..STALE counts as ERROR (fail closed)."""
    level = byte_to_level(status.level)
    return Level.ERROR if level is None else level


class DemoMonitor:
    """Subscribes posture, alerts and health; calls the stack's Trigger services."""

    def __init__(self, on_restart: Callable[[str, str], None]) -> None:
        self.context = rclpy.Context()
        # No rclpy signal handlers: Ctrl-C must stay Python's KeyboardInterrupt in the demo's main
        # thread, which stops every process the demo started (rclpy's handler would swallow it).
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        # A hidden name (leading underscore), like ros2cli's daemon: not a cell node, not reported.
        self.node = rclpy.create_node("_demo_console", context=self.context)
        self.view = PostureView()
        self.lock = threading.Lock()
        self._on_restart = on_restart
        self._seen_restarts: set[tuple[str, str]] = set()
        latched = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(DiagnosticArray, "/cobot_security/posture", self._on_posture, 10)
        self.node.create_subscription(DiagnosticArray, "/cobot_security/alerts", self._on_alerts, latched)
        self.node.create_subscription(DiagnosticArray, "/cobot_security/health", self._on_health, 50)
        self.rotate_due: Any = self.node.create_client(Trigger, "/keystore_manager/rotate_due")
        self.get_report: Any = self.node.create_client(Trigger, "/supervisor/get_report")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_posture(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for status in msg.status:
                if status.name == "cobot_security/posture":
                    values = {kv.key: kv.value for kv in status.values}
                    self.view.score = int(values.get("score", "0") or 0)
                    self.view.overall = _level(status)
                elif status.name.startswith("cobot_security/posture/"):
                    self.view.update_control(status.name.rsplit("/", 1)[1], _level(status), status.message)

    def _on_alerts(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for status in msg.status:
                control = status.name.rsplit("/", 1)[1]
                self.view.add_alert(f"{utc_now().strftime('%H:%M:%S')} {control} -> {_level(status).name}")

    def _on_health(self, msg: DiagnosticArray) -> None:
        entries = [(s.name, {kv.key: kv.value for kv in s.values}, s.message) for s in msg.status]
        for request in restart_requests(entries):
            key = (request.enclave, request.token)
            if key not in self._seen_restarts:
                self._seen_restarts.add(key)
                self._on_restart(request.enclave, request.token)

    def call(self, client: Any, timeout_s: float = 20.0) -> str | None:
        """Call a std_srvs/Trigger service; its message, or None when it did not answer."""
        if not client.wait_for_service(timeout_sec=timeout_s):
            return None
        future = client.call_async(Trigger.Request())
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout_s):
            return None
        result = future.result()
        return result.message if result is not None else None

    def snapshot(self) -> PostureView:
        """A copy of the view, safe to render while callbacks keep updating."""
        with self.lock:
            return PostureView(dict(self.view.rows), self.view.score, self.view.overall, list(self.view.alerts))

    def close(self) -> None:
        """Stop spinning and leave the graph."""
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
