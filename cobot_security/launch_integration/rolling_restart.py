"""Rolling restart after certificate rotations, inside a running launch.

:class:`RollingRestart` starts the nodes from their factories, listens on the health topic through
:class:`~cobot_security.launch_integration.health_listener.HealthListener` (a declared node of the
cell) and, for every new ``cobot_security/restart_required/<enclave>`` status, restarts that
enclave's nodes make-before-break: the next node stops only once its predecessor's replacement is
up (process started, node seen in the graph), else the launch fails after :attr:`up_timeout_s`.
Its state (nodes running, requests handled, the queue, the restart in progress) lives in fields;
the planning is :mod:`cobot_security.launch_plan.restart`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from launch.action import Action
from launch.actions import EmitEvent, OpaqueFunction, RegisterEventHandler, TimerAction
from launch.event import Event
from launch.event_handler import EventHandler
from launch.event_handlers import OnProcessExit, OnShutdown
from launch.events import matches_action
from launch.events.process import ShutdownProcess
from launch.launch_context import LaunchContext
from launch_ros.actions import Node

from cobot_security.errors import CobotSecurityError
from cobot_security.launch_integration.health_listener import HEALTH_TOPIC, HealthListener, NodeSighting
from cobot_security.launch_integration.required_nodes import RequiredNodes
from cobot_security.launch_plan.restart import RestartRequest, plan_rolling_restart
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import WorkcellPolicy

__all__ = ["HEALTH_TOPIC", "RestartRequested", "RollingRestart", "RollingRestartTimeout"]

#: How often the graph is looked at while a replacement comes up.
POLL_S = 0.2


class RollingRestartTimeout(CobotSecurityError):
    """A restarted node did not come back in time: the launch fails rather than go on blind."""


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
    """Start ``node_factories``' nodes; after a rotation restart its enclave's nodes one at a time.

    ``node_factories`` maps each node FQN to a function building its (fresh) ``Node`` action, e.g.
    a :func:`~cobot_security.launch_integration.secure_node` call.  Each rotation (status token)
    restarts a node once.  The nodes are required (:class:`RequiredNodes`): one dying on its own
    fails the launch.
    """

    def __init__(self, policy_path: str | Path, node_factories: Mapping[str, Callable[[], Node]],
                 health_topic: str = HEALTH_TOPIC, up_timeout_s: float = 60.0) -> None:
        self.policy_path = Path(policy_path)
        self.factories = dict(node_factories)
        self.health_topic = health_topic
        self.up_timeout_s = up_timeout_s
        self.policy: WorkcellPolicy | None = None
        self.running: dict[str, Node] = {}
        self.handled: list[RestartRequest] = []
        self.queue: list[str] = []
        self.required = RequiredNodes()
        self.listener: HealthListener | None = None
        self._before: NodeSighting | None = None
        self._deadline = 0.0

    def action(self) -> OpaqueFunction:
        """The launch action that starts the nodes and the health listener."""
        return OpaqueFunction(function=self._start)

    def _start(self, context: LaunchContext) -> list[Action]:
        self.policy = load_policy(self.policy_path)
        self.listener = HealthListener(self.health_topic, lambda requests: context.asyncio_loop.call_soon_threadsafe(
            context.emit_event_sync, RestartRequested(requests)))
        self.running = {fqn: factory() for fqn, factory in self.factories.items()}
        return [RegisterEventHandler(_OnRestartRequested(self)),
                RegisterEventHandler(OnShutdown(on_shutdown=lambda _event, _context: self._close())),
                *(entity for node in self.running.values() for entity in (node, self.required.watch(node)))]

    def _close(self) -> None:
        if self.listener is not None:
            self.listener.close()

    def on_requests(self, requests: list[RestartRequest]) -> list[Action]:
        """Queue the nodes of newly rotated enclaves; start the first restart when idle."""
        assert self.policy is not None
        idle = not self.queue
        targets = plan_rolling_restart(self.policy, requests, self.running, self.handled)
        self.handled.extend(r for r in requests if r not in self.handled)
        self.queue.extend(fqn for fqn in targets if fqn not in self.queue)
        return self._stop_next() if idle else []

    def _stop_next(self) -> list[Action]:
        """Stop the head of the queue (only ever one node down); it is started again on exit."""
        if not self.queue:
            return []
        assert self.listener is not None
        old = self.running[self.queue[0]]
        self._before = self.listener.sighting(self.queue[0])
        self.required.expect_exit(old)
        return [RegisterEventHandler(OnProcessExit(target_action=old, on_exit=self._relaunch, handle_once=True)),
                EmitEvent(event=ShutdownProcess(process_matcher=matches_action(old)))]

    def _relaunch(self, _event: Event, _context: LaunchContext) -> list[Action]:
        fqn = self.queue[0]
        new = self.factories[fqn]()
        self.running[fqn] = new
        self._deadline = time.monotonic() + self.up_timeout_s
        return [new, self.required.watch(new), self._poll(fqn)]

    def _poll(self, fqn: str) -> TimerAction:
        return TimerAction(period=POLL_S, actions=[OpaqueFunction(function=lambda _context: self._check_up(fqn))])

    def _check_up(self, fqn: str) -> list[Action]:
        """Make before break: the next node stops only once ``fqn``'s replacement is in the graph."""
        assert self.listener is not None and self._before is not None
        if self.listener.replaced(fqn, self._before):
            self.queue.pop(0)
            return self._stop_next()
        if time.monotonic() > self._deadline:
            raise RollingRestartTimeout(
                f"rolling restart: {fqn} was restarted but its node did not appear in the graph within "
                f"{self.up_timeout_s:.0f} s; not stopping the next node ({', '.join(self.queue[1:]) or 'none left'})")
        return [self._poll(fqn)]
