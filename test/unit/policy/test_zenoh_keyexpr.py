"""keyexpr / zenoh_acl: the policy's grants as rmw_zenoh key expressions and the router's access control."""

from __future__ import annotations

from pathlib import Path

import pytest

from cobot_security.errors import PolicyError
from cobot_security.policy.keyexpr import (
    REPLY,
    REQUEST,
    TOPIC,
    compute_policy_zenoh_grants,
    compute_zenoh_grants,
    grant_expression,
    proof_key,
    split_dds_name,
)
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import Enclave, NodeGrants
from cobot_security.policy.zenoh_acl import render_access_control


@pytest.mark.parametrize(("dds", "expected"), [
    ("rt/cell/joint_states", (TOPIC, "/cell/joint_states")),
    ("rq/cell/arm_driver/set_speed_scalingRequest", (REQUEST, "/cell/arm_driver/set_speed_scaling")),
    ("rr/cell/arm_driver/set_speed_scalingReply", (REPLY, "/cell/arm_driver/set_speed_scaling")),
    ("ros_discovery_info", None),
    ("rq/cell/no_suffix", None),
])
def test_dds_names_split_back_into_ros_names(dds: str, expected: tuple[str, str] | None) -> None:
    assert split_dds_name(dds) == expected


@pytest.mark.parametrize(("name", "expression"), [
    ("/cell/joint_states", "42/cell/joint_states/*/*"),
    ("/cell/*", "42/cell/*/*/*"),
    ("/cell/joint_*", "42/cell/joint_$*/*/*"),
])
def test_grants_cover_type_and_hash_chunks_only(name: str, expression: str) -> None:
    assert grant_expression(42, name) == expression


def test_single_character_wildcard_is_refused_naming_the_enclave() -> None:
    with pytest.raises(PolicyError, match=r"cell\.yaml: enclaves\./cell/x: expected names without '\?'"):
        grant_expression(1, "/cell/joint_?", source="cell.yaml", enclave="/cell/x")


def test_proof_keys_are_concrete_rmw_zenoh_keys() -> None:
    key = proof_key(7, "rt/cell/joint_states")
    assert key is not None and key.startswith("7/cell/joint_states/std_msgs::msg::dds_::String_/RIHS01_")
    assert proof_key(7, "ros_discovery_info") is None


def test_arm_driver_grants_follow_its_policy_entry(example_policy_path: Path) -> None:
    policy = load_policy(example_policy_path)
    enclave = policy.enclave("/cell/arm_driver")
    assert enclave is not None
    grants = compute_zenoh_grants(enclave, 42)
    assert "42/cell/joint_states/*/*" in grants.publish
    assert "42/cell/arm_driver/joint_trajectory/*/*" in grants.subscribe
    assert "42/cell/arm_driver/set_speed_scaling/*/*" in grants.serve
    assert "42/cell/arm_driver/follow_joint_trajectory/_action/send_goal/*/*" in grants.serve
    assert "42/cell/arm_driver/follow_joint_trajectory/_action/feedback/*/*" in grants.publish
    assert grants.call == ()
    assert not any("ros_discovery_info" in key for key in grants.publish + grants.subscribe)


def test_access_control_is_default_deny_with_one_subject_per_enclave(example_policy_path: Path) -> None:
    policy = load_policy(example_policy_path)
    acl = render_access_control(compute_policy_zenoh_grants(policy), policy.domain_ids,
                                excluded=frozenset({"/cell/vision"}))
    assert acl["enabled"] is True and acl["default_permission"] == "deny"
    subjects = acl["subjects"]
    assert isinstance(subjects, list)
    names = [s["cert_common_names"] for s in subjects]
    assert ["/cell/vision"] not in names
    assert len(names) == len(policy.enclaves) - 1
    rules = {r["id"]: r for r in acl["rules"]}  # type: ignore[union-attr]
    for policy_entry in acl["policies"]:  # type: ignore[union-attr]
        assert all(rule in rules for rule in policy_entry["rules"])
    assert rules["/cell/arm_driver:publish:ingress"]["messages"] == ["put"]
    assert rules["/cell/arm_driver:subscribe:egress"]["messages"] == ["put"]
    assert rules["/cell/cell_controller:call:ingress"]["messages"] == ["query"]
    assert rules["/cell/arm_driver:liveliness"]["key_exprs"] == ["@ros2_lv/42/**"]
    assert not any(rule.startswith("/cell/vision") for rule in rules)


def test_an_enclave_without_builtins_or_grants_gets_liveliness_only() -> None:
    idle = Enclave("/cell/idle", (NodeGrants("idle", "/cell"),), builtins=False)
    grants = compute_zenoh_grants(idle, 3)
    assert grants.is_empty()
    acl = render_access_control([grants], [3])
    assert [r["id"] for r in acl["rules"]] == ["/cell/idle:liveliness"]  # type: ignore[union-attr]
