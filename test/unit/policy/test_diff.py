"""Policy diff on hand-made pairs: added topic, removed action, widened wildcard, new enclave and domain."""

from __future__ import annotations

from pathlib import Path

import pytest

from cobot_security.policy.diff import describe_dds_name, diff_policies
from cobot_security.policy.load import load_policy, load_policy_text
from cobot_security.policy.model import WorkcellPolicy

BASE = """
version: 1
name: pair
domain_ids: [{domains}]
enclaves:
  /cell/arm:
    node: arm
    namespace: /cell
    topics: {{publish: [{publish}]}}
    actions: {{serve: [{actions}]}}
"""


def _policy(publish: str = "joint_states", actions: str = "~/follow", domains: str = "42",
            extra: str = "") -> WorkcellPolicy:
    return load_policy_text(BASE.format(publish=publish, actions=actions, domains=domains) + extra, "pair.yaml")


def _changes(old: WorkcellPolicy, new: WorkcellPolicy) -> list[tuple[str, str, str, str, bool]]:
    return [(c.change, c.direction, c.kind, c.dds_name, c.widens) for c in diff_policies(old, new).changes]


def test_same_policy_is_empty(example_policy_path: Path) -> None:
    policy = load_policy(example_policy_path)

    result = diff_policies(policy, policy)

    assert result.empty and not result.widens
    assert {e.status for e in result.enclaves} == {"unchanged"}


def test_added_topic_widens() -> None:
    result = diff_policies(_policy(), _policy(publish="joint_states, ~/status"))

    assert _changes(_policy(), _policy(publish="joint_states, ~/status")) == [
        ("added", "publish", "topic", "rt/cell/arm/status", True)]
    assert result.widens
    assert result.changes[0].ros_name == "/cell/arm/status"


def test_removed_action_lists_every_mangled_part_and_does_not_widen() -> None:
    old = _policy(actions="~/follow, ~/grip")

    result = diff_policies(old, _policy())

    assert not result.widens
    removed = [(c.direction, c.dds_name) for c in result.changes]
    assert removed == [
        ("publish", "rr/cell/arm/grip/_action/cancel_goalReply"),
        ("publish", "rr/cell/arm/grip/_action/get_resultReply"),
        ("publish", "rr/cell/arm/grip/_action/send_goalReply"),
        ("publish", "rt/cell/arm/grip/_action/feedback"),
        ("publish", "rt/cell/arm/grip/_action/status"),
        ("subscribe", "rq/cell/arm/grip/_action/cancel_goalRequest"),
        ("subscribe", "rq/cell/arm/grip/_action/get_resultRequest"),
        ("subscribe", "rq/cell/arm/grip/_action/send_goalRequest"),
    ]
    assert {(c.change, c.kind, c.ros_name) for c in result.changes} == {("removed", "action", "/cell/arm/grip")}


def test_widened_wildcard_is_a_widening_and_a_narrowed_one_is_not() -> None:
    concrete, wild = _policy(publish="joint_states, ~/status"), _policy(publish="'*'")

    widened = diff_policies(concrete, wild)
    narrowed = diff_policies(wild, concrete)

    assert [(c.change, c.dds_name, c.widens) for c in widened.changes] == [
        ("added", "rt/cell/*", True), ("removed", "rt/cell/arm/status", False),
        ("removed", "rt/cell/joint_states", False)]
    assert widened.widens
    # Concrete names inside the old wildcard are added DDS names, but the old grant covered them.
    assert [(c.change, c.widens) for c in narrowed.changes] == [("added", False), ("added", False), ("removed", False)]
    assert not narrowed.widens


def test_new_enclave_and_new_domain_widen() -> None:
    extra = "  /cell/new:\n    node: new\n    namespace: /cell\n    builtins: false\n"

    result = diff_policies(_policy(), _policy(domains="42, 7", extra=extra))

    assert result.domains_added == (7,) and result.widens
    assert [(e.enclave, e.status) for e in result.enclaves] == [("/cell/arm", "unchanged"), ("/cell/new", "added")]


def test_removed_enclave_and_domain_do_not_widen() -> None:
    extra = "  /cell/old:\n    node: old\n    namespace: /cell\n"

    result = diff_policies(_policy(domains="42, 7", extra=extra), _policy())

    assert not result.widens
    assert result.domains_removed == (7,)
    assert result.enclaves[1].status == "removed"
    assert all(c.change == "removed" for c in result.changes)
    assert result.as_dict()["enclaves"][0]["enclave"] == "/cell/old"


@pytest.mark.parametrize(("dds", "kind", "ros"), [
    ("rt/cell/joint_states", "topic", "/cell/joint_states"),
    ("rq/cell/s/setRequest", "service", "/cell/s/set"),
    ("rr/cell/s/setReply", "service", "/cell/s/set"),
    ("rt/cell/a/_action/feedback", "action", "/cell/a"),
    ("rq/cell/a/_action/send_goalRequest", "action", "/cell/a"),
    ("rt/rosout", "builtin", "/rosout"),
    ("rr/cell/a/get_parametersReply", "builtin", "/cell/a/get_parameters"),
    ("ros_discovery_info", "builtin", "ros_discovery_info"),
])
def test_describe_dds_name(dds: str, kind: str, ros: str) -> None:
    assert describe_dds_name(dds) == (kind, ros)
