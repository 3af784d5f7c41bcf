"""The example cell: the security stack plus one demo_node per node of the policy's cell enclaves.

Wiring only: which nodes, their enclaves, topics and environment are decided by
cobot_security.launch_plan (through cobot_security.launch_integration).  ``secure:=true`` (the
default) first proves that this rmw can start a node with DDS Security and stops with one line if
not; ``secure:=false`` runs without DDS Security (unsafe_no_security, warned) for an rmw without
it, e.g. the PyPI wheels.
"""

import os
from pathlib import Path

from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from cobot_security.launch_integration import security_environment_actions, workcell_demo_actions
from cobot_security.launch_plan import stack_defaults
from launch import LaunchDescription

STACK = str(Path(__file__).resolve().parent / "security_stack.launch.py")
FORWARDED = ("keystore", "policy", "controls", "attestations", "domain_id", "period_s", "stale_after_s")


def generate_launch_description() -> LaunchDescription:
    """Arguments → security environment, the included stack and the demo nodes."""
    defaults = stack_defaults(os.environ)
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=defaults[name]) for name in FORWARDED),
        DeclareLaunchArgument("secure", default_value="true",
                              description="false: run WITHOUT DDS Security (unsafe_no_security)"),
        DeclareLaunchArgument("rolling_restart", default_value="false",
                              description="true: restart a node after its enclave is rotated"),
        OpaqueFunction(function=security_environment_actions),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(STACK),
            launch_arguments={name: LaunchConfiguration(name) for name in FORWARDED}.items()),
        OpaqueFunction(function=workcell_demo_actions),
    ])
