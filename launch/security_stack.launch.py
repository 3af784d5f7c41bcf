"""The cobot_security stack: health_reporter, supervisor and keystore_manager, each in its enclave.

Wiring only (launch arguments → node parameters); defaults and enclaves come from
cobot_security.launch_plan.  It first checks that the package can be launched by name here, and a
stack node dying on its own fails the launch (exit 1).  ``ros2 launch cobot_security security_stack.launch.py
keystore:=/etc/cell/keystore policy:=/etc/cell/workcell.yaml domain_id:=42``
"""

import os

from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from cobot_security.launch_integration import RequiredNodes, check_install
from cobot_security.launch_plan import STACK_NODES, stack_defaults
from launch import LaunchDescription

ARGUMENTS = {
    "keystore": "Keystore directory (default $ROS_SECURITY_KEYSTORE, else keystores/default)",
    "policy": "Workcell policy YAML",
    "controls": "Posture controls catalog YAML",
    "attestations": "Attestations YAML",
    "domain_id": "ROS_DOMAIN_ID of the cell (default $ROS_DOMAIN_ID, else 0)",
    "period_s": "Report / evaluation period [s]",
    "stale_after_s": "A reporter silent for this long is STALE [s]",
}


def generate_launch_description() -> LaunchDescription:
    """Declare the stack's arguments and start its three nodes with them as parameters."""
    defaults = stack_defaults(os.environ)
    params = {name: LaunchConfiguration(name) for name in
              ("keystore", "policy", "controls", "attestations", "period_s", "stale_after_s")}
    required = RequiredNodes()
    nodes = [Node(package="cobot_security", executable=fqn.lstrip("/"), name=fqn.lstrip("/"),
                  namespace="/", parameters=[params], ros_arguments=["--enclave", enclave], output="screen")
             for fqn, enclave in STACK_NODES.items()]
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=defaults[name], description=text)
          for name, text in ARGUMENTS.items()),
        OpaqueFunction(function=check_install),
        SetEnvironmentVariable("ROS_DOMAIN_ID", LaunchConfiguration("domain_id")),
        *(entity for node in nodes for entity in (node, required.watch(node))),
    ])
