"""``secure_node``: a ``launch_ros`` Node in its policy enclave, with ``ROS_SECURITY_*`` set.

Use from a user's launch file::

    from cobot_security.launch_integration import secure_node
    secure_node("/etc/cell/workcell.yaml", "/etc/cell/keystore", "my_arm", "arm_driver",
                "arm_driver", "/cell", parameters=[{"port": "/dev/ttyUSB0"}])

A node the policy gives no enclave fails when the launch description is built, with the
:class:`~cobot_security.launch_plan.NodeNotInPolicyError` message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import launch.logging
from launch_ros.actions import Node

from cobot_security.launch_plan.node_spec import secure_node_spec
from cobot_security.policy.load import load_policy

__all__ = ["PACKAGE", "secure_node", "warn"]

PACKAGE = "cobot_security"


def warn(message: str) -> None:
    """A warning on the launch log (every use of an ``unsafe_*`` option says so)."""
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
) -> Node:
    """A ``launch_ros.actions.Node`` running in its policy enclave with ``ROS_SECURITY_*`` set.

    ``node_kwargs`` go to ``Node`` unchanged (``parameters``, ``output``, ...); extra
    ``ros_arguments`` and ``additional_env`` are merged with the enclave's.

    :raises NodeNotInPolicyError: the policy names no enclave for ``<namespace>/<name>``.
    :raises PolicyError: the policy file is unreadable or invalid.
    """
    policy = load_policy(Path(policy_path))
    spec = secure_node_spec(policy, Path(keystore), package, executable, name, namespace,
                            policy_source=str(policy_path), unsafe_no_security=unsafe_no_security)
    if spec.warning:
        warn(spec.warning)
    ros_arguments = list(spec.arguments[1:]) + list(node_kwargs.pop("ros_arguments", []))
    env = {**dict(node_kwargs.pop("additional_env", {})), **spec.env}
    return Node(package=spec.package, executable=spec.executable, name=spec.name,
                namespace=spec.namespace, ros_arguments=ros_arguments, additional_env=env,
                **node_kwargs)
