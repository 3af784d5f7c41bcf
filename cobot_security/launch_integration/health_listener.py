"""The launch side's one ROS node: hears restart requests and watches the graph for replacements.

It runs as a declared participant of the cell, :data:`~cobot_security.launch_plan.LAUNCH_LISTENER`
(node ``/launch_listener`` in enclave ``/cobot_security/launch_listener``, granted the health
topic by the policy), in a private rclpy context spun on its own thread, instead of launch_ros'
``/launch_ros_<pid>`` node, which the supervisor rightly reports as unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from cobot_security.launch_plan.cell import LAUNCH_LISTENER
from cobot_security.launch_plan.preflight import LaunchPreflightError
from cobot_security.launch_plan.restart import RestartRequest, restart_requests

__all__ = ["HEALTH_TOPIC", "HealthListener", "NodeSighting"]

HEALTH_TOPIC = "/cobot_security/health"
ROSOUT = "/rosout"


@dataclass(frozen=True)
class NodeSighting:
    """What the graph showed of one node: present or not, and its /rosout publisher ids."""

    present: bool
    gids: frozenset[bytes]


class HealthListener:
    """Subscribes ``topic`` and calls ``on_requests`` (from its spin thread) with restart requests."""

    def __init__(self, topic: str, on_requests: Callable[[list[RestartRequest]], None]) -> None:
        (fqn, enclave), = LAUNCH_LISTENER.items()
        self.context = Context()
        try:
            rclpy.init(context=self.context, args=["--ros-args", "--enclave", enclave])
            self.node = rclpy.create_node(fqn.lstrip("/"), namespace="/", context=self.context)
        except Exception as exc:  # noqa: BLE001 - rcl errors: one line naming what the policy must hold
            rclpy.try_shutdown(context=self.context)
            raise LaunchPreflightError(
                f"rolling restart: the launch's listener {fqn} (enclave {enclave}) cannot start: {exc}; "
                f"the policy must declare it (see policies/workcell.yaml)") from exc
        self._on_requests = on_requests
        self._absent_seen: set[str] = set()
        self.node.create_subscription(DiagnosticArray, topic, self._on_health, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, name="cobot_security_launch_listener", daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def _on_health(self, msg: DiagnosticArray) -> None:
        requests = restart_requests((s.name, {kv.key: kv.value for kv in s.values}, s.message) for s in msg.status)
        if requests:
            self._on_requests(requests)

    def sighting(self, fqn: str) -> NodeSighting:
        """Whether node ``fqn`` is in the graph now, and the ids of its /rosout publishers."""
        namespace, _, name = fqn.rpartition("/")
        present = (name, namespace or "/") in self.node.get_node_names_and_namespaces()
        gids = frozenset(bytes(info.endpoint_gid) for info in self.node.get_publishers_info_by_topic(ROSOUT)
                         if info.node_name == name and info.node_namespace == (namespace or "/"))
        return NodeSighting(present, gids)

    def replaced(self, fqn: str, before: NodeSighting) -> bool:
        """Whether a new instance of ``fqn`` is up: a new /rosout publisher, or back after being gone."""
        now = self.sighting(fqn)
        if now.gids - before.gids:
            return True
        if not now.present:
            self._absent_seen.add(fqn)
            return False
        if fqn in self._absent_seen:
            self._absent_seen.discard(fqn)
            return True
        return False

    def close(self) -> None:
        """Leave the graph and stop the spin thread."""
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=5.0)
