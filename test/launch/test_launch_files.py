"""The launch files load and build with default arguments; secure_node refuses nodes not in the policy.

Needs ``launch`` and ``launch_ros`` (a ROS 2 install); skipped where they are absent.  Nothing
here starts a process: descriptions are built and the OpaqueFunctions run on a LaunchContext.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# "launch.actions", not "launch": the repo's launch/ folder imports as an empty namespace package.
pytest.importorskip("launch.actions", reason="launch is not installed (ROS 2 install needed)")
launch = pytest.importorskip("launch")
launch_ros = pytest.importorskip("launch_ros.actions", reason="launch_ros is not installed (ROS 2 install needed)")

from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

from cobot_security.launch_integration import (  # noqa: E402
    secure_node,
    security_environment_actions,
    workcell_demo_actions,
)
from cobot_security.launch_plan import NodeNotInPolicyError  # noqa: E402

pytestmark = pytest.mark.launch

REPO = Path(__file__).resolve().parents[2]
LAUNCH_DIR = REPO / "launch"
WORKCELL = REPO / "policies" / "workcell.yaml"


def _text(part: list) -> str:
    """A command part or env key/value whose substitutions are all plain text."""
    return "".join(getattr(sub, "text", f"<{type(sub).__name__}>") for sub in part)


def _cmd(node: object) -> list[str]:
    return [_text(part) for part in node.process_description.cmd]


def _env(node: object) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in node.process_description.additional_env or []}


def _context(**configurations: str) -> object:
    context = launch.LaunchContext()
    context.launch_configurations.update(configurations)
    return context


@pytest.mark.parametrize("name", ["security_stack.launch.py", "workcell_demo.launch.py"])
def test_launch_file_builds_with_default_arguments(name: str) -> None:
    description = PythonLaunchDescriptionSource(str(LAUNCH_DIR / name)).get_launch_description(
        launch.LaunchContext())
    assert isinstance(description, launch.LaunchDescription)
    arguments = {arg.name: arg for arg in description.get_launch_arguments()}
    for key in ("keystore", "policy", "controls", "attestations", "domain_id", "period_s", "stale_after_s"):
        assert key in arguments, f"{name} lacks launch argument {key}"
        assert arguments[key].default_value is not None


def test_security_stack_starts_the_three_nodes_in_their_enclaves() -> None:
    description = PythonLaunchDescriptionSource(
        str(LAUNCH_DIR / "security_stack.launch.py")).get_launch_description(launch.LaunchContext())
    nodes = [e for e in description.entities if isinstance(e, launch_ros.Node)]
    assert sorted(n.node_executable for n in nodes) == ["health_reporter", "keystore_manager", "supervisor"]
    for node in nodes:
        cmd = _cmd(node)
        enclave = cmd[cmd.index("--enclave") + 1]
        assert enclave == f"/cobot_security/{node.node_executable}"


def _nodes(actions: list) -> list:
    return [a for a in actions if isinstance(a, launch_ros.Node)]


def test_workcell_demo_nodes_from_policy_unsafe() -> None:
    context = _context(policy=str(WORKCELL), keystore="/tmp/ks", secure="false", period_s="0.5",
                       rolling_restart="false")
    actions = workcell_demo_actions(context)
    nodes = _nodes(actions)
    assert [(n.node_package, n.node_executable) for n in nodes] == [("cobot_security", "demo_node")] * 7
    enclaves = [_cmd(n)[_cmd(n).index("--enclave") + 1] for n in nodes]
    assert enclaves == ["/cell/arm_driver", "/cell/gripper", "/cell/vision", "/cell/vision",
                        "/cell/safety_monitor", "/cell/cell_controller", "/cell/mes_bridge"]
    for node in nodes:
        assert _env(node) == {"ROS_SECURITY_ENABLE": "false", "ROS_SECURITY_KEYSTORE": "/tmp/ks"}
    # every node is required: one exit handler each
    handlers = [a for a in actions if isinstance(a, launch.actions.RegisterEventHandler)]
    assert len(handlers) == len(nodes)


def test_secure_false_switches_security_off_for_the_whole_launch() -> None:
    """An exported ROS_SECURITY_ENABLE=true / Enforce must not survive secure:=false (issue 14 #2)."""
    context = _context(policy=str(WORKCELL), keystore="/tmp/ks", secure="false", period_s="1.0",
                       rolling_restart="false")
    actions = security_environment_actions(context)
    sets = {_text(a.name): _text(a.value) for a in actions if isinstance(a, launch.actions.SetEnvironmentVariable)}
    unsets = [_text(a.name) for a in actions if isinstance(a, launch.actions.UnsetEnvironmentVariable)]
    assert sets == {"ROS_SECURITY_ENABLE": "false", "ROS_SECURITY_KEYSTORE": "/tmp/ks"}
    assert unsets == ["ROS_SECURITY_STRATEGY"]
    assert not [a for a in actions if isinstance(a, launch.actions.OpaqueFunction)]  # no pre-flight


def test_workcell_demo_nodes_secure_by_default_argument() -> None:
    context = _context(policy=str(WORKCELL), keystore="/tmp/ks", secure="true", period_s="1.0",
                       rolling_restart="false")
    nodes = _nodes(workcell_demo_actions(context))
    assert all(_env(n)["ROS_SECURITY_ENABLE"] == "true" for n in nodes)
    assert all(_env(n)["ROS_SECURITY_STRATEGY"] == "Enforce" for n in nodes)
    env_actions = security_environment_actions(context)
    assert {_text(a.name): _text(a.value) for a in env_actions
            if isinstance(a, launch.actions.SetEnvironmentVariable)} == {
        "ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce", "ROS_SECURITY_KEYSTORE": "/tmp/ks"}
    # the secure path ends with the DDS Security pre-flight
    assert isinstance(env_actions[-1], launch.actions.OpaqueFunction)


def test_workcell_demo_rolling_restart_is_one_opaque_function() -> None:
    context = _context(policy=str(WORKCELL), keystore="/tmp/ks", secure="false", period_s="1.0",
                       rolling_restart="true")
    actions = workcell_demo_actions(context)
    assert len(actions) == 1
    assert isinstance(actions[0], launch.actions.OpaqueFunction)


def test_secure_node_builds_node_in_its_enclave() -> None:
    node = secure_node(WORKCELL, "/etc/cell/keystore", "my_arm", "arm_driver", "arm_driver", "/cell",
                       parameters=[{"port": "/dev/ttyUSB0"}])
    cmd = _cmd(node)
    assert cmd[1:4] == ["--ros-args", "--enclave", "/cell/arm_driver"]
    assert _env(node) == {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce",
                          "ROS_SECURITY_KEYSTORE": "/etc/cell/keystore"}


def test_secure_node_refuses_node_missing_from_policy() -> None:
    with pytest.raises(NodeNotInPolicyError) as caught:
        secure_node(WORKCELL, "/etc/cell/keystore", "my_pkg", "foo", "foo", "/cell")
    assert str(caught.value) == (
        f"node /cell/foo has no enclave in policy {WORKCELL}: add it under enclaves: (see docs/policy.md)")


def test_bad_secure_argument_is_refused() -> None:
    context = _context(policy=str(WORKCELL), keystore="/tmp/ks", secure="maybe", period_s="1.0",
                       rolling_restart="false")
    with pytest.raises(Exception, match="secure: expected true or false, got 'maybe'"):
        workcell_demo_actions(context)
