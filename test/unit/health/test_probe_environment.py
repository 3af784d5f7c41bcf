"""Environment and graph probes: ROS_SECURITY_*, discovery exposure and graph conformance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cobot_security import checks
from cobot_security.health.environment_probes import probe_discovery, probe_security_env
from cobot_security.health.graph_probes import GraphFacts, NodeFact, probe_graph
from cobot_security.policy.model import Enclave, GovernanceOptions, Lifetimes, NodeGrants, WorkcellPolicy
from cobot_security.status import Finding, Level

SECURE = {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce"}


# --- security env -------------------------------------------------------------------------------

def test_security_env_ok(tmp_path: Path) -> None:
    (tmp_path / "ks").mkdir()
    (tmp_path / "link").symlink_to("ks")
    for configured in (str(tmp_path / "ks"), str(tmp_path / "link"), str(tmp_path / "ks") + "/"):
        found = probe_security_env({**SECURE, "ROS_SECURITY_KEYSTORE": configured}, tmp_path / "ks", "host1")
        assert [(f.check, f.subject, f.level) for f in found] == [(checks.SECURITY_ENV, "host1", Level.OK)]


@pytest.mark.parametrize(("change", "expected"), [
    ({"ROS_SECURITY_ENABLE": None}, "ROS_SECURITY_ENABLE: expected true, got unset"),
    ({"ROS_SECURITY_ENABLE": "True"}, "ROS_SECURITY_ENABLE: expected true, got True"),
    ({"ROS_SECURITY_STRATEGY": "Permissive"}, "ROS_SECURITY_STRATEGY: expected Enforce, got Permissive"),
    ({"ROS_SECURITY_STRATEGY": None}, "ROS_SECURITY_STRATEGY: expected Enforce, got unset (Permissive)"),
    ({"ROS_SECURITY_KEYSTORE": None}, "ROS_SECURITY_KEYSTORE: expected the keystore path, got unset"),
    ({"ROS_SECURITY_KEYSTORE": "/elsewhere"}, "ROS_SECURITY_KEYSTORE: expected "),
])
def test_security_env_errors(tmp_path: Path, change: dict[str, str | None], expected: str) -> None:
    environ = {**SECURE, "ROS_SECURITY_KEYSTORE": str(tmp_path)}
    for key, value in change.items():
        if value is None:
            environ.pop(key)
        else:
            environ[key] = value
    finding = probe_security_env(environ, tmp_path, "host1")[0]
    assert finding.level == Level.ERROR
    assert expected in finding.message


def test_security_env_empty_names_every_gap(tmp_path: Path) -> None:
    finding = probe_security_env({}, tmp_path, "host1")[0]
    assert finding.message.count("expected") == 3


# --- discovery ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("environ", "level", "text"), [
    ({}, Level.ERROR, "expected one of 42"),  # default domain 0 not in the policy
    ({"ROS_DOMAIN_ID": "7"}, Level.ERROR, "got 7"),
    ({"ROS_DOMAIN_ID": "x"}, Level.ERROR, "expected an integer"),
    ({"ROS_DOMAIN_ID": "42"}, Level.WARN, "whole subnet"),
    ({"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}, Level.WARN, "whole subnet"),
    ({"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT"}, Level.WARN, "whole subnet"),
    ({"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "BOGUS"}, Level.WARN, "unrecognised"),
    ({"ROS_DOMAIN_ID": "42", "ROS_LOCALHOST_ONLY": "0"}, Level.WARN, "whole subnet"),
    ({"ROS_DOMAIN_ID": "42", "ROS_LOCALHOST_ONLY": "1"}, Level.OK, "localhost"),
    ({"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, Level.OK, "LOCALHOST"),
    ({"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF"}, Level.OK, "OFF"),
    ({"ROS_DOMAIN_ID": "42", "ROS_STATIC_PEERS": "10.0.0.2;10.0.0.3"}, Level.OK, "static peers"),
    ({"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET", "ROS_STATIC_PEERS": "10.0.0.2"},
     Level.OK, "static peers"),
    ({"ROS_DOMAIN_ID": "7", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, Level.ERROR, "got 7"),
])
def test_discovery(policy_factory: Callable[..., WorkcellPolicy], environ: dict[str, str], level: Level,
                   text: str) -> None:
    found = probe_discovery(environ, policy_factory("/gripper", domain_ids=(42,)), "host1")
    assert [(f.check, f.subject) for f in found] == [(checks.DISCOVERY_EXPOSURE, "host1")]
    assert found[0].level == level, found[0].message
    assert text in found[0].message


def test_discovery_default_domain_allowed(policy_factory: Callable[..., WorkcellPolicy]) -> None:
    found = probe_discovery({"ROS_LOCALHOST_ONLY": "1"}, policy_factory("/gripper", domain_ids=(0,)), "h")
    assert found[0].level == Level.OK
    assert found[0].value("domain_id") == "0"


# --- graph --------------------------------------------------------------------------------------

@pytest.fixture
def graph_policy() -> WorkcellPolicy:
    arm = Enclave(path="/cell/arm_driver", nodes=(NodeGrants(
        name="arm_driver", namespace="/cell", publish=("joint_states", "~/status"), subscribe=("cmd",)),))
    vision = Enclave(path="/cell/vision", builtins=False, nodes=(
        NodeGrants(name="camera", namespace="/cell", publish=("camera/*",)),
        NodeGrants(name="detector", namespace="/cell"),
    ))
    return WorkcellPolicy(version=1, name="g", domain_ids=(0,), governance=GovernanceOptions(),
                          lifetimes=Lifetimes(), enclaves=(arm, vision))


def levels(found: list[Finding]) -> dict[str, tuple[Level, str]]:
    assert all(f.check == checks.GRAPH_CONFORMANCE for f in found)
    return {f.subject: (f.level, f.message) for f in found}


ARM = NodeFact("arm_driver", "/cell", "/cell/arm_driver")
CAMERA = NodeFact("camera", "/cell", "/cell/vision")


def test_graph_conforming(graph_policy: WorkcellPolicy) -> None:
    graph = GraphFacts(
        nodes=(ARM, CAMERA, NodeFact("_ros2cli_daemon_0_abc", "/", ""), NodeFact("_hidden", "/cell", "/x")),
        publishers=(("/cell/joint_states", "/cell/arm_driver"), ("/cell/arm_driver/status", "/cell/arm_driver"),
                    ("/rosout", "/cell/arm_driver"), ("/parameter_events", "/cell/arm_driver"),
                    ("/cell/camera/image_raw", "/cell/camera"), ("/anything", "/other/node")),
    )
    assert levels(probe_graph(graph, graph_policy)) == {
        "/cell/arm_driver": (Level.OK, "in its policy enclave, publishing granted topics only"),
        "/cell/camera": (Level.OK, "in its policy enclave, publishing granted topics only"),
    }


def test_graph_node_not_in_policy(graph_policy: WorkcellPolicy) -> None:
    found = levels(probe_graph(GraphFacts(nodes=(NodeFact("intruder", "/cell", "/cell/arm_driver"),)),
                               graph_policy))
    assert found == {"/cell/intruder": (Level.ERROR, "node /cell/intruder is not in the policy")}


def test_graph_wrong_enclave(graph_policy: WorkcellPolicy) -> None:
    graph = GraphFacts(nodes=(NodeFact("arm_driver", "/cell", "/cell/vision"), NodeFact("detector", "/cell", "")))
    assert levels(probe_graph(graph, graph_policy)) == {
        "/cell/arm_driver": (Level.ERROR, "enclave: expected /cell/arm_driver, got /cell/vision"),
        "/cell/detector": (Level.ERROR, "enclave: expected /cell/vision, got none"),
    }


def test_graph_ungranted_publisher(graph_policy: WorkcellPolicy) -> None:
    graph = GraphFacts(nodes=(ARM,), publishers=(
        ("/cell/joint_states", "/cell/arm_driver"), ("/cell/cmd", "/cell/arm_driver"),
        ("/cell/trajectory", "/cell/arm_driver")))
    level, message = levels(probe_graph(graph, graph_policy))["/cell/arm_driver"]
    assert level == Level.ERROR
    assert message == "publishes ungranted topics: /cell/cmd, /cell/trajectory"


def test_graph_wildcard_and_builtins_off(graph_policy: WorkcellPolicy) -> None:
    graph = GraphFacts(nodes=(CAMERA,), publishers=(
        ("/cell/camera/image_raw", "/cell/camera"), ("/cell/camera/info", "/cell/camera"),
        ("/rosout", "/cell/camera"), ("/cell/lidar/scan", "/cell/camera")))
    level, message = levels(probe_graph(graph, graph_policy))["/cell/camera"]
    assert level == Level.ERROR
    assert message == "publishes ungranted topics: /cell/lidar/scan, /rosout"  # vision has no builtins
