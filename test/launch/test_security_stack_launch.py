"""launch_testing: bring up security_stack.launch.py and hear /cobot_security/health and /posture.

Needs launch, launch_ros and launch_testing (skipped where absent); where they are installed it
runs under plain pytest (launch_testing's plugin collects ``generate_test_description`` because of
its ``launch_test`` marker).  The stack runs on a leased domain against a real keystore made for
the example policy; the package is found by name through the ament index (a colcon install, or
the venv's ament layout that scripts/setup.sh writes).  After shutdown every node must have
exited cleanly, and the run's temporary directory is removed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import unittest
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("launch.actions", reason="launch is not installed (ROS 2 install needed)")
pytest.importorskip("launch_ros.actions", reason="launch_ros is not installed (ROS 2 install needed)")
pytest.importorskip("launch_testing.actions", reason="launch_testing is not installed (ROS 2 install needed)")

import launch_testing  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description import LaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from ros2launch.api import get_share_file_path_from_package  # noqa: E402
from ros_domains import DomainLease, lease_domain  # noqa: E402

from cobot_security.clock import utc_now  # noqa: E402
from cobot_security.keystore.store import init_keystore  # noqa: E402
from cobot_security.policy.load import load_policy  # noqa: E402

pytestmark = pytest.mark.launch

REPO = Path(__file__).resolve().parents[2]


class _Run:
    """What one launch of the stack holds until its post-shutdown tests release it."""

    lease: DomainLease | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def domain_id(cls) -> int:
        assert cls.lease is not None, "generate_test_description did not run"
        return cls.lease.domain_id

    @classmethod
    def release(cls) -> None:
        if cls.lease is not None:
            cls.lease.release()
        if cls.tmp is not None:
            cls.tmp.cleanup()


@pytest.mark.launch_test
def generate_test_description() -> LaunchDescription:
    _Run.lease = lease_domain()
    _Run.tmp = tempfile.TemporaryDirectory(prefix="cobot_security_stack_")
    keystore = Path(_Run.tmp.name) / "keystore"
    init_keystore(keystore, load_policy(REPO / "policies" / "workcell.yaml"), utc_now())
    prefixes = [*filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)), sys.prefix]
    os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(dict.fromkeys(prefixes))
    for key in ("ROS_SECURITY_ENABLE", "ROS_SECURITY_STRATEGY", "ROS_SECURITY_KEYSTORE"):
        os.environ.pop(key, None)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(_Run.domain_id())
    stack = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(get_share_file_path_from_package(
            package_name="cobot_security", file_name="security_stack.launch.py")),
        launch_arguments={"domain_id": str(_Run.domain_id()), "period_s": "0.5", "stale_after_s": "2.0",
                          "keystore": str(keystore)}.items())
    return LaunchDescription([stack, launch_testing.actions.ReadyToTest()])


class TestStackPublishes(unittest.TestCase):
    """The stack's topics carry DiagnosticArrays within a bounded time."""

    def test_health_and_posture_arrive(self) -> None:
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=_Run.domain_id())
        node = rclpy.create_node("_stack_launch_test", context=context)
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


@launch_testing.post_shutdown_test()
class TestStackShutdown(unittest.TestCase):
    """Ctrl-C (the launch's shutdown) ends every node with exit code 0."""

    def test_every_node_exited_cleanly(self, proc_info: Any) -> None:
        launch_testing.asserts.assertExitCodes(proc_info)

    @classmethod
    def tearDownClass(cls) -> None:
        _Run.release()
