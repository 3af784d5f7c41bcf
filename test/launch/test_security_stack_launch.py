"""launch_testing: bring up security_stack.launch.py and hear /cobot_security/health and /posture.

Needs launch, launch_ros and launch_testing (skipped where absent).  Where cobot_security is
not in the ament index (a source checkout), a throwaway ament prefix in a temporary directory
maps the executables to this interpreter, so the launch file runs unchanged.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import unittest
from pathlib import Path

import pytest

pytest.importorskip("launch.actions", reason="launch is not installed (ROS 2 install needed)")
pytest.importorskip("launch_ros.actions", reason="launch_ros is not installed (ROS 2 install needed)")
pytest.importorskip("launch_testing.actions", reason="launch_testing is not installed (ROS 2 install needed)")

import launch_testing.actions  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from ros_domains import lease_domain  # noqa: E402

import launch  # noqa: E402

pytestmark = pytest.mark.launch

REPO = Path(__file__).resolve().parents[2]
_DOMAIN_LEASE = lease_domain()  # held for the life of the test process
DOMAIN_ID = str(_DOMAIN_LEASE.domain_id)
EXECUTABLES = {
    "health_reporter": "cobot_security.nodes.health_reporter",
    "supervisor": "cobot_security.nodes.supervisor",
    "keystore_manager": "cobot_security.nodes.keystore_manager",
}


def _ensure_ament_prefix() -> None:
    """Make ``cobot_security`` findable by launch_ros when it is not installed with colcon."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix("cobot_security")
        return
    except (PackageNotFoundError, OSError, EnvironmentError):
        pass
    prefix = Path(tempfile.mkdtemp(prefix="cobot_security_prefix_"))
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    (index / "cobot_security").write_text("")
    (prefix / "share" / "cobot_security").symlink_to(REPO)  # policies/ and launch/ as installed
    lib = prefix / "lib" / "cobot_security"
    lib.mkdir(parents=True)
    for name, module in EXECUTABLES.items():
        script = lib / name
        script.write_text(f"#!{sys.executable}\nimport runpy, sys\nsys.path.insert(0, {str(REPO)!r})\n"
                          f"runpy.run_module({module!r}, run_name='__main__')\n")
        script.chmod(0o755)
    os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(
        p for p in (str(prefix), os.environ.get("AMENT_PREFIX_PATH", "")) if p)


#: Set when launch_testing called generate_test_description (the stack is up); plain pytest
#: without the launch_testing plugin collects TestStackPublishes too and must skip it.
LAUNCHED = threading.Event()


def generate_test_description() -> launch.LaunchDescription:
    LAUNCHED.set()
    _ensure_ament_prefix()
    for key in ("ROS_SECURITY_ENABLE", "ROS_SECURITY_STRATEGY"):
        os.environ.pop(key, None)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = DOMAIN_ID
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    stack = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO / "launch" / "security_stack.launch.py")),
        launch_arguments={"domain_id": DOMAIN_ID, "period_s": "0.5", "stale_after_s": "2.0",
                          "keystore": str(Path(tempfile.mkdtemp()) / "keystore")}.items())
    return launch.LaunchDescription([stack, launch_testing.actions.ReadyToTest()])


class TestStackPublishes(unittest.TestCase):
    """The stack's topics carry DiagnosticArrays within a bounded time."""

    def setUp(self) -> None:
        if not LAUNCHED.is_set():
            self.skipTest("needs launch_testing (launch_test CLI or its pytest plugin) to bring up the stack")

    def test_health_and_posture_arrive(self) -> None:
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=int(DOMAIN_ID))
        node = rclpy.create_node("stack_launch_test", context=context)
        heard = {"/cobot_security/health": threading.Event(), "/cobot_security/posture": threading.Event()}
        for topic, event in heard.items():
            node.create_subscription(DiagnosticArray, topic, lambda _msg, e=event: e.set(), 10)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        try:
            for topic, event in heard.items():
                deadline = 60.0
                while not event.is_set() and deadline > 0:
                    executor.spin_once(timeout_sec=0.2)
                    deadline -= 0.2
                self.assertTrue(event.is_set(), f"no message on {topic} within 60 s")
        finally:
            executor.shutdown(timeout_sec=1)
            node.destroy_node()
            context.try_shutdown()
