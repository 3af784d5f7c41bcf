"""Launch adapter: turn :mod:`cobot_security.launch_support` decisions into launch / launch_ros actions.

``launch`` and ``launch_ros`` are imported inside the functions, so that importing this module
needs neither (the package's core never does).  Use from a user's launch file::

    from cobot_security.launch_helpers import secure_node
    secure_node("/etc/cell/workcell.yaml", "/etc/cell/keystore", "my_arm", "arm_driver",
                "arm_driver", "/cell", parameters=[{"port": "/dev/ttyUSB0"}])

A node the policy gives no enclave fails when the launch description is built, with the
:class:`~cobot_security.launch_support.NodeNotInPolicyError` message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cobot_security.launch_support import (
    RestartRequest,
    demo_node_entries,
    parse_launch_bool,
    plan_rolling_restart,
    restart_requests,
    secure_node_spec,
    security_environment,
)
from cobot_security.policy.load import load_policy

__all__ = [
    "HEALTH_TOPIC",
    "rolling_restart_handler",
    "secure_node",
    "security_environment_actions",
    "workcell_demo_actions",
]

HEALTH_TOPIC = "/cobot_security/health"
PACKAGE = "cobot_security"


def _warn(message: str) -> None:
    import launch.logging

    launch.logging.get_logger(PACKAGE).warning(message)


def secure_node(
    policy_path: str | Path,
    keystore: str | Path,
    package: str,
    executable: str,
    name: str,
    namespace: str = "/",
    *,
    unsafe_no_security: bool = False,
    **node_kwargs: Any,
) -> Any:
    """A ``launch_ros.actions.Node`` running in its policy enclave with ``ROS_SECURITY_*`` set.

    ``node_kwargs`` go to ``Node`` unchanged (``parameters``, ``output``, ...); extra
    ``ros_arguments`` and ``additional_env`` are merged with the enclave's.

    :raises NodeNotInPolicyError: the policy names no enclave for ``<namespace>/<name>``.
    :raises PolicyError: the policy file is unreadable or invalid.
    """
    from launch_ros.actions import Node

    policy = load_policy(Path(policy_path))
    spec = secure_node_spec(policy, Path(keystore), package, executable, name, namespace,
                            policy_source=str(policy_path), unsafe_no_security=unsafe_no_security)
    if spec.warning:
        _warn(spec.warning)
    ros_arguments = list(spec.arguments[1:]) + list(node_kwargs.pop("ros_arguments", []))
    env = {**dict(node_kwargs.pop("additional_env", {})), **spec.env}
    return Node(package=spec.package, executable=spec.executable, name=spec.name,
                namespace=spec.namespace, ros_arguments=ros_arguments, additional_env=env,
                **node_kwargs)


def _config(context: Any, name: str) -> str:
    from launch.substitutions import LaunchConfiguration

    return LaunchConfiguration(name).perform(context)


def security_environment_actions(context: Any) -> list[Any]:
    """OpaqueFunction body: ``SetEnvironmentVariable`` for every later process of the launch.

    Reads the launch arguments ``keystore`` and ``secure``; with ``secure:=false`` DDS Security
    stays off (``unsafe_no_security``, warned).
    """
    from launch.actions import SetEnvironmentVariable

    unsafe = not parse_launch_bool(_config(context, "secure"), "secure")
    if unsafe:
        _warn("secure:=false (unsafe_no_security): the whole launch runs WITHOUT DDS Security")
    env = security_environment(Path(_config(context, "keystore")), unsafe_no_security=unsafe)
    return [SetEnvironmentVariable(key, value) for key, value in env.items()]


def workcell_demo_actions(context: Any) -> list[Any]:
    """OpaqueFunction body: one ``demo_node`` per node of the policy's cell enclaves.

    Reads the launch arguments ``policy``, ``keystore``, ``secure``, ``period_s`` and
    ``rolling_restart`` (true: the nodes are restarted after a rotation, see
    :func:`rolling_restart_handler`).
    """
    policy_path = Path(_config(context, "policy"))
    keystore = Path(_config(context, "keystore"))
    unsafe = not parse_launch_bool(_config(context, "secure"), "secure")
    period_s = float(_config(context, "period_s"))

    factories: dict[str, Callable[[], Any]] = {}
    for entry in demo_node_entries(load_policy(policy_path)):
        params: dict[str, object] = {"period_s": period_s, **entry.parameters()}

        def factory(entry_name: str = entry.name, namespace: str = entry.namespace,
                    node_params: dict[str, object] = params) -> Any:
            return secure_node(policy_path, keystore, PACKAGE, "demo_node", entry_name, namespace,
                               unsafe_no_security=unsafe, parameters=[node_params], output="screen")
        factories[entry.fqn] = factory

    if parse_launch_bool(_config(context, "rolling_restart"), "rolling_restart"):
        return [rolling_restart_handler(policy_path, factories)]
    return [factory() for factory in factories.values()]


def rolling_restart_handler(
    policy_path: str | Path,
    node_factories: Mapping[str, Callable[[], Any]],
    health_topic: str = HEALTH_TOPIC,
) -> Any:
    """An ``OpaqueFunction`` that starts the nodes and restarts them after certificate rotations.

    ``node_factories`` maps each node FQN to a function building its (fresh) ``Node`` action,
    e.g. a :func:`secure_node` call.  The launch process subscribes ``health_topic`` through
    launch_ros' own node; on a ``cobot_security/restart_required/<enclave>`` status the nodes of
    that enclave are stopped and started again from their factory, one node at a time, while
    all others keep running.  Each rotation (status ``not_after``) restarts a node once.

    Under DDS Security the launch process itself joins the graph, so it needs an enclave that may
    subscribe ``health_topic`` (``ROS_SECURITY_ENCLAVE_OVERRIDE``; see docs/launch.md).
    """
    # The defining modules (re-exported by ``launch``): same objects, and not shadowed for type
    # checkers by this repository's top-level ``launch/`` directory of launch files.
    from launch.actions import EmitEvent, OpaqueFunction, RegisterEventHandler
    from launch.event import Event
    from launch.event_handler import EventHandler
    from launch.event_handlers import OnProcessExit
    from launch.events import matches_action
    from launch.events.process import ShutdownProcess

    class RestartRequested(Event):
        """Emitted on the launch loop when a health message asks for restarts."""

        name = "cobot_security.events.RestartRequested"

        def __init__(self, requests: list[RestartRequest]) -> None:
            super().__init__()
            self.requests = requests

    def start(context: Any) -> list[Any]:
        import launch_ros.ros_adapters
        from diagnostic_msgs.msg import DiagnosticArray

        policy = load_policy(Path(policy_path))
        current = {fqn: factory() for fqn, factory in node_factories.items()}
        handled: list[RestartRequest] = []
        queue: list[str] = []
        lock = threading.Lock()

        def restart_next() -> list[Any]:
            # One node down at a time: the next restart starts when the previous one exits.
            if not queue:
                return []
            fqn = queue[0]
            old = current[fqn]

            def relaunch(_event: Any, _context: Any) -> list[Any]:
                queue.pop(0)
                current[fqn] = node_factories[fqn]()
                return [current[fqn], *restart_next()]

            return [RegisterEventHandler(OnProcessExit(target_action=old, on_exit=relaunch, handle_once=True)),
                    EmitEvent(event=ShutdownProcess(process_matcher=matches_action(old)))]

        class RestartHandler(EventHandler):
            def __init__(self) -> None:
                super().__init__(matcher=lambda event: isinstance(event, RestartRequested))

            def handle(self, event: Any, handler_context: Any) -> list[Any]:
                super().handle(event, handler_context)
                idle = not queue
                targets = plan_rolling_restart(policy, event.requests, current, handled)
                handled.extend(r for r in event.requests if r not in handled)
                queue.extend(fqn for fqn in targets if fqn not in queue)
                return restart_next() if idle else []

        def on_health(msg: Any) -> None:
            requests = restart_requests(
                (s.name, {kv.key: kv.value for kv in s.values}, s.message) for s in msg.status)
            with lock:
                if requests:
                    context.asyncio_loop.call_soon_threadsafe(
                        context.emit_event_sync, RestartRequested(requests))

        node = launch_ros.ros_adapters.get_ros_node(context)
        node.create_subscription(DiagnosticArray, health_topic, on_health, 10)
        return [RegisterEventHandler(RestartHandler()), *current.values()]

    return OpaqueFunction(function=start)
