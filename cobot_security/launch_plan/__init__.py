"""What to launch, decided without launch: enclaves and environment per node, the stack and demo
cell's nodes, launch-argument defaults and rolling-restart planning.

Pure core (no launch, rclpy or environment reads); the launch actions that carry these decisions
out live in the adapter package :mod:`cobot_security.launch_integration`.
"""

from __future__ import annotations

from cobot_security.launch_plan.arguments import parse_launch_bool, stack_defaults
from cobot_security.launch_plan.cell import (
    LAUNCH_LISTENER,
    STACK_NODES,
    STACK_TOPIC_PREFIXES,
    DemoNodeEntry,
    demo_node_entries,
    is_stack_topic,
)
from cobot_security.launch_plan.node_spec import (
    ENV_ENABLE,
    ENV_KEYSTORE,
    ENV_STRATEGY,
    UNSAFE_WARNING,
    NodeNotInPolicyError,
    SecuredNodeSpec,
    find_node,
    node_fqn,
    secure_node_spec,
    security_environment,
)
from cobot_security.launch_plan.restart import (
    RESTART_CHECK,
    RestartRequest,
    plan_rolling_restart,
    restart_requests,
    restart_targets,
)

__all__ = [
    "ENV_ENABLE",
    "ENV_KEYSTORE",
    "ENV_STRATEGY",
    "LAUNCH_LISTENER",
    "RESTART_CHECK",
    "STACK_NODES",
    "STACK_TOPIC_PREFIXES",
    "UNSAFE_WARNING",
    "DemoNodeEntry",
    "NodeNotInPolicyError",
    "RestartRequest",
    "SecuredNodeSpec",
    "demo_node_entries",
    "find_node",
    "is_stack_topic",
    "node_fqn",
    "parse_launch_bool",
    "plan_rolling_restart",
    "restart_requests",
    "restart_targets",
    "secure_node_spec",
    "security_environment",
    "stack_defaults",
]
