"""ROS names in a policy → DDS topic names in the grants (rt/, rq/…Request, rr/…Reply, actions, ~/)."""

from __future__ import annotations

import pytest

from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.load import load_policy_text
from cobot_security.policy.model import Enclave


def _enclave(node_yaml: str, builtins: bool = False) -> Enclave:
    text = (
        "version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /e:\n"
        + "".join(f"    {line}\n" for line in node_yaml.splitlines())
        + f"    builtins: {'true' if builtins else 'false'}\n"
    )
    return load_policy_text(text, "inline.yaml").enclaves[0]


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [
        ("/", "chatter", "rt/chatter"),
        ("/", "/chatter", "rt/chatter"),
        ("/", "~/status", "rt/arm/status"),
        ("/cell", "joint_states", "rt/cell/joint_states"),
        ("/cell", "/joint_states", "rt/joint_states"),
        ("/cell", "~/status", "rt/cell/arm/status"),
        ("/cell/left", "sub/topic", "rt/cell/left/sub/topic"),
        ("/cell", "/cell/*", "rt/cell/*"),
    ],
)
def test_topic_mangling(namespace: str, name: str, expected: str) -> None:
    enclave = _enclave(f"node: arm\nnamespace: {namespace}\ntopics: {{publish: ['{name}'], subscribe: ['{name}']}}")
    grants = compute_dds_grants(enclave)
    assert grants.publish == (expected,)
    assert grants.subscribe == (expected,)


@pytest.mark.parametrize(
    ("namespace", "name", "fqn"),
    [("/", "add_two_ints", "/add_two_ints"), ("/cell", "~/set_speed", "/cell/arm/set_speed"),
     ("/cell", "/supervisor/get_report", "/supervisor/get_report"), ("/cell", "gripper/open", "/cell/gripper/open")],
)
def test_service_mangling(namespace: str, name: str, fqn: str) -> None:
    server = compute_dds_grants(_enclave(f"node: arm\nnamespace: {namespace}\nservices: {{serve: ['{name}']}}"))
    client = compute_dds_grants(_enclave(f"node: arm\nnamespace: {namespace}\nservices: {{call: ['{name}']}}"))
    assert server.subscribe == (f"rq{fqn}Request",) and server.publish == (f"rr{fqn}Reply",)
    assert client.publish == (f"rq{fqn}Request",) and client.subscribe == (f"rr{fqn}Reply",)


def test_action_expansion() -> None:
    server = compute_dds_grants(_enclave("node: arm\nnamespace: /cell\nactions: {serve: [~/follow]}"))
    base = "/cell/arm/follow/_action"
    assert set(server.subscribe) == {f"rq{base}/{s}Request" for s in ("send_goal", "cancel_goal", "get_result")}
    assert set(server.publish) == {f"rr{base}/{s}Reply" for s in ("send_goal", "cancel_goal", "get_result")} | {
        f"rt{base}/feedback",
        f"rt{base}/status",
    }
    client = compute_dds_grants(_enclave("node: ctl\nnamespace: /cell\nactions: {call: [arm/follow]}"))
    assert set(client.publish) == {f"rq{base}/{s}Request" for s in ("send_goal", "cancel_goal", "get_result")}
    assert set(client.subscribe) == {f"rr{base}/{s}Reply" for s in ("send_goal", "cancel_goal", "get_result")} | {
        f"rt{base}/feedback",
        f"rt{base}/status",
    }


def test_builtins_expansion() -> None:
    grants = compute_dds_grants(_enclave("node: arm\nnamespace: /cell", builtins=True))
    assert {"rt/rosout", "rt/parameter_events", "ros_discovery_info", "rr/cell/arm/get_parametersReply"} <= set(
        grants.publish
    )
    assert {"rt/parameter_events", "ros_discovery_info", "rq/cell/arm/set_parametersRequest"} <= set(grants.subscribe)
    assert "rr/cell/arm/get_type_descriptionReply" in grants.publish
    assert compute_dds_grants(_enclave("node: arm\nnamespace: /cell")) == compute_dds_grants(
        _enclave("node: arm\nnamespace: /cell\ntopics: {publish: []}")
    )
    assert compute_dds_grants(_enclave("node: arm\nnamespace: /cell")).publish == ()


def test_private_names_resolve_per_node_in_shared_enclave() -> None:
    enclave = _enclave(
        "nodes:\n  - {name: camera, namespace: /cell, topics: {publish: [~/info]}}\n"
        "  - {name: detector, namespace: /cell, topics: {publish: [~/info]}}"
    )
    assert compute_dds_grants(enclave).publish == ("rt/cell/camera/info", "rt/cell/detector/info")
