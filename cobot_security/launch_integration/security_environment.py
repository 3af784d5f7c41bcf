"""The ``ROS_SECURITY_*`` environment of a whole launch (``secure:=true|false``)."""

from __future__ import annotations

from launch.action import Action
from launch.launch_context import LaunchContext
from launch.actions import SetEnvironmentVariable

from cobot_security.launch_integration.arguments import config_bool, config_path
from cobot_security.launch_integration.secure_node import warn
from cobot_security.launch_plan.node_spec import security_environment

__all__ = ["security_environment_actions"]


def security_environment_actions(context: LaunchContext) -> list[Action]:
    """OpaqueFunction body: ``SetEnvironmentVariable`` for every later process of the launch.

    Reads the launch arguments ``keystore`` and ``secure``; with ``secure:=false`` DDS Security
    stays off (``unsafe_no_security``, warned).
    """
    unsafe = not config_bool(context, "secure")
    if unsafe:
        warn("secure:=false (unsafe_no_security): the whole launch runs WITHOUT DDS Security")
    env = security_environment(config_path(context, "keystore"), unsafe_no_security=unsafe)
    return [SetEnvironmentVariable(key, value) for key, value in env.items()]
