"""Launch integration (adapter): launch / launch_ros actions that carry out the
:mod:`cobot_security.launch_plan` decisions.

Imports ``launch`` and ``launch_ros``; the pure decisions stay in the core. Use from a user's
launch file::

    from cobot_security.launch_integration import secure_node
"""

from __future__ import annotations

from cobot_security.launch_integration.preflight import check_install, check_security
from cobot_security.launch_integration.required_nodes import RequiredNodes
from cobot_security.launch_integration.rolling_restart import HEALTH_TOPIC, RollingRestart
from cobot_security.launch_integration.secure_node import secure_node
from cobot_security.launch_integration.security_environment import security_environment_actions
from cobot_security.launch_integration.workcell_demo import workcell_demo_actions

__all__ = [
    "HEALTH_TOPIC",
    "RequiredNodes",
    "RollingRestart",
    "check_install",
    "check_security",
    "secure_node",
    "security_environment_actions",
    "workcell_demo_actions",
]
