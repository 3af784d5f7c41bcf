"""A benchmark's own rclpy node in its own Context, spun in a thread, with a get_report client."""

from __future__ import annotations

import json
import threading

import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger


class SpunNode:
    """``node`` spins in the background until :meth:`close`; :meth:`report` asks the supervisor."""

    def __init__(self, domain: int, name: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        self.client = self.node.create_client(Trigger, "/supervisor/get_report")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutdown race
                break

    def report(self, timeout: float = 10.0) -> dict | None:
        """The supervisor's get_report body, or None when it does not answer in ``timeout``."""
        if not self.client.wait_for_service(timeout_sec=timeout):
            return None
        done = threading.Event()
        future = self.client.call_async(Trigger.Request())
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            return None
        return json.loads(future.result().message)

    def close(self) -> None:
        """Shut the context down and wait for the spinning thread."""
        self.context.try_shutdown()
        self.thread.join(timeout=5)
