"""Rolling restart after certificate rotations, inside a running launch.

:class:`RollingRestart` starts the nodes from their factories, listens on the health topic and,
for every new ``cobot_security/restart_required/<enclave>`` status, restarts that enclave's nodes
one at a time while all others keep running.  Its state (nodes running, requests handled, the
restart queue) lives in its fields; the planning is :mod:`cobot_security.launch_plan.restart`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import launch_ros.ros_adapters
from diagnostic_msgs.msg import DiagnosticArray
from launch.action import Action
from launch.launch_context import LaunchContext
from launch.actions import EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event import Event
from launch.event_handler import EventHandler
from launch.event_handlers import OnProcessExit
from launch.events import matches_action
from launch.events.process import ShutdownProcess
from launch_ros.actions import Node

from cobot_security.launch_plan.restart import RestartRequest, plan_rolling_restart, restart_requests
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import WorkcellPolicy

__all__ = ["HEALTH_TOPIC", "RestartRequested", "RollingRestart"]

HEALTH_TOPIC = "/cobot_security/health"


class RestartRequested(Event):
    """Emitted on the launch loop when a health message asks for restarts."""

    name = "cobot_security.events.RestartRequested"

    def __init__(self, requests: list[RestartRequest]) -> None:
        super().__init__()
        self.requests = requests


class _OnRestartRequested(EventHandler):
    """Routes :class:`RestartRequested` events to their :class:`RollingRestart`."""

    def __init__(self, owner: RollingRestart) -> None:
        super().__init__(matcher=lambda event: isinstance(event, RestartRequested))
        self._owner = owner

    def handle(self, event: Event, context: LaunchContext) -> list[Action]:
        super().handle(event, context)
        assert isinstance(event, RestartRequested)
        return self._owner.on_requests(event.requests)


class RollingRestart:
    """Start ``node_factories``' nodes and restart an enclave's nodes, one at a time, after a rotation.

    ``node_factories`` maps each node FQN to a function building its (fresh) ``Node`` action, e.g.
    a :func:`~cobot_security.launch_integration.secure_node` call.  Each rotation (status token)
    restarts a node once.
    """

    def __init__(self, policy_path: str | Path, node_factories: Mapping[str, Callable[[], Node]],
                 health_topic: str = HEALTH_TOPIC) -> None:
        self.policy_path = Path(policy_path)
        self.factories = dict(node_factories)
        self.health_topic = health_topic
        self.policy: WorkcellPolicy | None = None
        self.running: dict[str, Node] = {}
        self.handled: list[RestartRequest] = []
        self.queue: list[str] = []
        self._lock = threading.Lock()

    def action(self) -> OpaqueFunction:
        """The launch action that starts the nodes and the health listener."""
        return OpaqueFunction(function=self._start)

    def _start(self, context: LaunchContext) -> list[Action]:
        self.policy = load_policy(self.policy_path)
        self.running = {fqn: factory() for fqn, factory in self.factories.items()}

        def on_health(msg: Any) -> None:
            requests = restart_requests(
                (s.name, {kv.key: kv.value for kv in s.values}, s.message) for s in msg.status)
            if requests:
                with self._lock:
                    context.asyncio_loop.call_soon_threadsafe(context.emit_event_sync, RestartRequested(requests))

        node = launch_ros.ros_adapters.get_ros_node(context)
        node.create_subscription(DiagnosticArray, self.health_topic, on_health, 10)
        return [RegisterEventHandler(_OnRestartRequested(self)), *self.running.values()]

    def on_requests(self, requests: list[RestartRequest]) -> list[Action]:
        """Queue the nodes of newly rotated enclaves; start the first restart when idle."""
        assert self.policy is not None
        idle = not self.queue
        targets = plan_rolling_restart(self.policy, requests, self.running, self.handled)
        self.handled.extend(r for r in requests if r not in self.handled)
        self.queue.extend(fqn for fqn in targets if fqn not in self.queue)
        return self._stop_next() if idle else []

    def _stop_next(self) -> list[Action]:
        # One node down at a time: the next restart starts when the previous one exits.
        if not self.queue:
            return []
        old = self.running[self.queue[0]]
        return [RegisterEventHandler(OnProcessExit(target_action=old, on_exit=self._relaunch, handle_once=True)),
                EmitEvent(event=ShutdownProcess(process_matcher=matches_action(old)))]

    def _relaunch(self, _event: Any, _context: LaunchContext) -> list[Action]:
        fqn = self.queue.pop(0)
        self.running[fqn] = self.factories[fqn]()
        return [self.running[fqn], *self._stop_next()]
