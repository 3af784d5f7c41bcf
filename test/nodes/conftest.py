"""Fixtures for node tests: a private ROS domain per test, node processes, a listening test node.

Every test runs on its own ROS_DOMAIN_ID with discovery limited to localhost, starts the real
console scripts (``health_reporter``, ``supervisor``) as processes that are always terminated,
and listens from an rclpy node in the test process living in its own Context.  Waits are bounded
(threading.Event with timeouts); nothing sleeps for a fixed time to "let things settle".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from node_helpers import REPO, WORKCELL, Listener, NodeProcess, make_keystore, utc_now  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here starts real rclpy processes."""
    for item in items:
        if "test/nodes/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.ros)


@pytest.fixture
def ros_domain(domain_id: int) -> int:
    """A ROS_DOMAIN_ID used by this test alone (leased, see test/ros_domains.py)."""
    return domain_id


@pytest.fixture
def ros_env(ros_domain: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment of the node processes (also applied to the test process)."""
    env = dict(os.environ)
    for key in ("ROS_SECURITY_ENABLE", "ROS_SECURITY_STRATEGY", "ROS_SECURITY_KEYSTORE",
                "ROS_SECURITY_ENCLAVE_OVERRIDE", "ROS_LOCALHOST_ONLY", "ROS_STATIC_PEERS"):
        env.pop(key, None)
        monkeypatch.delenv(key, raising=False)
    settings = {
        "ROS_DOMAIN_ID": str(ros_domain),
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    env.update(settings)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture
def start_node(ros_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """``start_node("health_reporter", keystore=..., policy=...)``; all stopped at teardown."""
    started: list[NodeProcess] = []
    log_dir = tmp_path / "logs"
    log_dir.mkdir()

    def start(name: str, **params: object) -> NodeProcess:
        params.setdefault("policy", str(WORKCELL))  # the example cell on this one machine
        node = NodeProcess(name, params, ros_env, log_dir)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def listener(ros_env: dict[str, str], ros_domain: int) -> Iterator[Listener]:
    """The test-side node on this test's domain."""
    lst = Listener(ros_domain)
    try:
        yield lst
    finally:
        lst.close()


@pytest.fixture(scope="session")
def _session_keystore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keystore(tmp_path_factory.mktemp("ks") / "keystore", utc_now())


@pytest.fixture
def healthy_keystore(_session_keystore: Path) -> Path:
    """A keystore for the example policy issued now (shared read-only by the tests)."""
    return _session_keystore


