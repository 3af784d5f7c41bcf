"""The ``ROS_SECURITY_*`` environment of a whole launch (``secure:=true|false``), checked before use."""

from __future__ import annotations

from launch.action import Action
from launch.actions import OpaqueFunction, SetEnvironmentVariable, UnsetEnvironmentVariable
from launch.launch_context import LaunchContext

from cobot_security.launch_integration.arguments import config_bool, config_path
from cobot_security.launch_integration.preflight import check_security
from cobot_security.launch_integration.secure_node import warn
from cobot_security.launch_plan.node_spec import ENV_STRATEGY, security_environment

__all__ = ["security_environment_actions"]


def security_environment_actions(context: LaunchContext) -> list[Action]:
    """OpaqueFunction body: the security environment for every later process of the launch.

    Reads the launch arguments ``keystore`` and ``secure``.  ``secure:=true`` sets Enforce and then
    runs the DDS Security pre-flight (:func:`check_security`): on an rmw without DDS Security the
    launch stops there with one line.  ``secure:=false`` (``unsafe_no_security``, warned) sets
    ``ROS_SECURITY_ENABLE=false`` and removes the strategy, whatever the shell exported.
    """
    unsafe = not config_bool(context, "secure")
    env = security_environment(config_path(context, "keystore"), unsafe_no_security=unsafe)
    actions: list[Action] = [SetEnvironmentVariable(key, value) for key, value in env.items()]
    if unsafe:
        warn("secure:=false (unsafe_no_security): the whole launch runs WITHOUT DDS Security "
             "(ROS_SECURITY_ENABLE=false, overriding the environment)")
        return [*actions, UnsetEnvironmentVariable(ENV_STRATEGY)]
    return [*actions, OpaqueFunction(function=check_security)]
