"""The example cell's demo nodes as launch actions (workcell_demo.launch.py)."""

from __future__ import annotations

from collections.abc import Callable

from launch.action import Action
from launch.launch_context import LaunchContext
from launch_ros.actions import Node

from cobot_security.launch_integration.arguments import config_bool, config_path, config_text
from cobot_security.launch_integration.required_nodes import RequiredNodes
from cobot_security.launch_integration.rolling_restart import RollingRestart
from cobot_security.launch_integration.secure_node import PACKAGE, secure_node
from cobot_security.launch_plan.cell import DemoNodeEntry, demo_node_entries
from cobot_security.policy.load import load_policy

__all__ = ["demo_node_parameters", "workcell_demo_actions"]


def demo_node_parameters(entry: DemoNodeEntry, period_s: float) -> dict[str, object]:
    """The ``demo_node`` parameters of one cell node."""
    return {"period_s": period_s, **entry.parameters()}


def workcell_demo_actions(context: LaunchContext) -> list[Action]:
    """OpaqueFunction body: one ``demo_node`` per node of the policy's cell enclaves.

    Reads the launch arguments ``policy``, ``keystore``, ``secure``, ``period_s`` and
    ``rolling_restart`` (true: the nodes are restarted after a rotation, see
    :class:`~cobot_security.launch_integration.rolling_restart.RollingRestart`).
    """
    policy_path = config_path(context, "policy")
    keystore = config_path(context, "keystore")
    unsafe = not config_bool(context, "secure")
    period_s = float(config_text(context, "period_s"))

    factories: dict[str, Callable[[], Node]] = {}
    for entry in demo_node_entries(load_policy(policy_path)):
        def factory(entry: DemoNodeEntry = entry) -> Node:
            return secure_node(policy_path, keystore, PACKAGE, "demo_node", entry.name, entry.namespace,
                               unsafe_no_security=unsafe, parameters=[demo_node_parameters(entry, period_s)],
                               output="screen")
        factories[entry.fqn] = factory

    if config_bool(context, "rolling_restart"):
        return [RollingRestart(policy_path, factories).action()]
    required = RequiredNodes()
    nodes = [factory() for factory in factories.values()]
    return [entity for node in nodes for entity in (node, required.watch(node))]
