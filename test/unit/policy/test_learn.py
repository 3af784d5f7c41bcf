"""Observations → learned policy: folding of builtins and actions, merging over time, relative names, enclaves."""

from __future__ import annotations

import datetime as dt

import pytest

from cobot_security.policy.export import dump_policy_yaml
from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.learn import (
    GROUP_BY_REPORTED,
    LearnOptions,
    learn_policy,
    learned_header,
    relative_name,
    unused_grants,
)
from cobot_security.policy.lint import lint_policy
from cobot_security.policy.load import load_policy, load_policy_text
from cobot_security.policy.observation import NodeSample, ObservationLog, fold_sample

ARM = "/cell/arm_driver"
ACTION = f"{ARM}/follow_joint_trajectory"


def _arm_sample(**extra: tuple[str, ...]) -> NodeSample:
    """The arm driver as rclpy reports it: builtins, action parts and all."""
    fields = dict(
        publish=("/cell/joint_states", f"{ARM}/status", "/rosout", "/parameter_events",
                 f"{ACTION}/_action/feedback", f"{ACTION}/_action/status"),
        subscribe=(f"{ARM}/joint_trajectory",),
        services_serve=(f"{ARM}/set_speed_scaling", f"{ARM}/get_parameters", f"{ARM}/get_type_description",
                        f"{ACTION}/_action/send_goal", f"{ACTION}/_action/cancel_goal",
                        f"{ACTION}/_action/get_result"),
        actions_serve=(ACTION,),
    )
    fields.update(extra)
    return NodeSample("arm_driver", "/cell", "/cell/arm_driver", **fields)


def test_fold_drops_builtins_and_folds_action_parts() -> None:
    folded = fold_sample(_arm_sample())

    assert folded["publish"] == {"/cell/joint_states", f"{ARM}/status"}
    assert folded["services_serve"] == {f"{ARM}/set_speed_scaling"}
    assert folded["actions_serve"] == {ACTION}


def test_action_parts_name_the_action_even_before_the_action_query_reports_it() -> None:
    sample = NodeSample("ctl", "/cell", subscribe=("/cell/g/cmd/_action/status",),
                        services_call=("/cell/g/cmd/_action/send_goal", "/cell/other/get_parameters"))

    folded = fold_sample(sample)

    assert folded["actions_call"] == {"/cell/g/cmd"}
    assert folded["subscribe"] == set()
    assert folded["services_call"] == {"/cell/other/get_parameters"}  # calling another node's parameters is real


def test_log_merges_late_restarting_and_short_lived_nodes() -> None:
    log = ObservationLog(exclude=frozenset({"/_observer"}))
    log.add_sample([_arm_sample(), NodeSample("_observer", "/")], 0.0)
    log.add_sample([NodeSample("blip", "/cell", publish=("/cell/blip",))], 1.0)  # seen once
    log.add_sample([_arm_sample(publish=("/cell/late_topic",))], 2.0)  # restarted with another topic

    assert sorted(log.nodes) == [ARM, "/cell/blip"]
    assert log.nodes[ARM].endpoints["publish"] == {"/cell/joint_states", f"{ARM}/status", "/cell/late_topic"}
    assert log.nodes["/cell/blip"].samples == 1
    assert log.hidden_nodes == set()  # the observer is excluded, not counted as hidden
    assert log.duration_s == 2.0
    assert "3 sample(s), 2 node(s), 7 endpoint(s)" in log.progress(2.0, 10)


def test_changes_name_each_node_once_per_new_enclave_or_endpoint() -> None:
    log = ObservationLog()
    log.add_sample([NodeSample("blip", "/cell")], 0.0)  # in the graph before its enclave and publisher
    assert log.changes() == ["learning: seen /cell/blip (enclave /, 0 endpoint(s))"]
    log.add_sample([NodeSample("blip", "/cell")], 0.1)
    assert log.changes() == []  # nothing new
    log.add_sample([NodeSample("blip", "/cell", "/cell/blip", publish=("/cell/blip",)), _arm_sample()], 0.2)

    assert log.changes() == ["learning: now /cell/blip (enclave /cell/blip, 1 endpoint(s))",
                             f"learning: seen {ARM} (enclave {ARM}, 5 endpoint(s))"]


def test_hostile_graph_names_are_counted_and_dropped() -> None:
    log = ObservationLog()
    log.add_sample([
        NodeSample("bad name", "/cell", publish=("/x",)),
        NodeSample("ok", "/cell", enclave="/cell/../etc", publish=("/good", "/bad topic", "relative", "/a//b")),
        NodeSample("_daemon", "/"),
    ], 0.0)

    assert list(log.nodes) == ["/cell/ok"]
    assert log.nodes["/cell/ok"].endpoints["publish"] == {"/good"}
    assert log.nodes["/cell/ok"].enclave == "/"
    assert log.dropped == 5
    assert log.hidden_nodes == {"/_daemon"}


@pytest.mark.parametrize(("name", "node", "namespace", "written"), [
    ("/cell/arm_driver/status", "arm_driver", "/cell", "~/status"),
    ("/cell/joint_states", "arm_driver", "/cell", "joint_states"),
    ("/cell/gripper/status", "arm_driver", "/cell", "gripper/status"),
    ("/cobot_security/alerts", "arm_driver", "/cell", "/cobot_security/alerts"),
    ("/supervisor/get_report", "supervisor", "/", "~/get_report"),
    ("/diagnostics", "supervisor", "/", "/diagnostics"),
    ("/cellar/x", "arm_driver", "/cell", "/cellar/x"),
])
def test_relative_names(name: str, node: str, namespace: str, written: str) -> None:
    assert relative_name(name, node, namespace) == written


def test_learned_policy_is_valid_and_grants_what_was_seen(fixed_now: dt.datetime) -> None:
    log = ObservationLog()
    log.add_sample([_arm_sample()], 0.0)
    log.add_sample([_arm_sample()], 30.0)
    options = LearnOptions("learned", (42,))

    policy = learn_policy(log, options)
    text = dump_policy_yaml(policy, learned_header(log, options, fixed_now))
    reloaded = load_policy_text(text, "learned.yaml")

    assert text.startswith("# Learned by `cobot-security policy learn` on domain(s) 42\n")
    assert "from 2026-11-29T11:59:30+00:00 to 2026-11-29T12:00:00+00:00 (30.0 s, 2 graph samples)" in text
    assert "*" not in text.split("enclaves:")[1]
    assert not [f for f in lint_policy(reloaded) if "wildcard" in f.message or f.level == "error"]
    node = reloaded.enclaves[0].nodes[0]
    assert node.publish == ("joint_states", "~/status")
    assert node.actions_serve == ("~/follow_joint_trajectory",)
    example = load_policy_text(_EXAMPLE_ARM, "example")
    assert compute_dds_grants(reloaded.enclaves[0]) == compute_dds_grants(example.enclaves[0])


_EXAMPLE_ARM = """
version: 1
name: x
domain_ids: [42]
enclaves:
  /cell/arm_driver:
    node: arm_driver
    namespace: /cell
    topics: {publish: [joint_states, ~/status], subscribe: [~/joint_trajectory]}
    services: {serve: [~/set_speed_scaling]}
    actions: {serve: [~/follow_joint_trajectory]}
"""


def test_enclaves_by_reported_enclave_group_composed_nodes() -> None:
    log = ObservationLog()
    log.add_sample([NodeSample("camera", "/cell", "/cell/vision", publish=("/cell/image_raw",)),
                    NodeSample("detector", "/cell", "/cell/vision", subscribe=("/cell/image_raw",)),
                    NodeSample("loner", "/cell", "/")], 0.0)

    by_node = learn_policy(log, LearnOptions("x", (0,)))
    by_reported = learn_policy(log, LearnOptions("x", (0,), GROUP_BY_REPORTED))

    assert [e.path for e in by_node.enclaves] == ["/cell/camera", "/cell/detector", "/cell/loner"]
    assert [(e.path, [n.name for n in e.nodes]) for e in by_reported.enclaves] == [
        ("/cell/loner", ["loner"]), ("/cell/vision", ["camera", "detector"])]


def test_nesting_enclave_paths_are_renamed() -> None:
    log = ObservationLog()
    log.add_sample([NodeSample("cell", "/"), NodeSample("arm", "/cell")], 0.0)

    policy = learn_policy(log, LearnOptions("x", (0,)))

    assert [e.path for e in policy.enclaves] == ["/cell/arm", "/cell_1"]
    load_policy_text(dump_policy_yaml(policy), "nested.yaml")  # the loader refuses nesting paths


def test_nothing_observed_is_an_error() -> None:
    with pytest.raises(ValueError, match="no node was observed"):
        learn_policy(ObservationLog(), LearnOptions("x", (0,)))


def test_unused_grants_name_each_unobserved_grant_and_absent_nodes(example_policy_path) -> None:
    example = load_policy(example_policy_path)
    log = ObservationLog()
    log.add_sample([NodeSample("arm_driver", "/cell", publish=("/cell/joint_states",))], 0.0)
    observed = learn_policy(log, LearnOptions("x", (42,)))

    findings = unused_grants(example, observed, "in 10 s")

    arm = [f for f in findings if f.enclave == "/cell/arm_driver"]
    assert [(f.field, f.message) for f in arm] == [
        ("topics.publish", "unused grant: '~/status' of node /cell/arm_driver was never observed in 10 s"),
        ("topics.subscribe", "unused grant: '~/joint_trajectory' of node /cell/arm_driver was never observed in 10 s"),
        ("services.serve", "unused grant: '~/set_speed_scaling' of node /cell/arm_driver was never observed in 10 s"),
        ("actions.serve",
         "unused grant: '~/follow_joint_trajectory' of node /cell/arm_driver was never observed in 10 s"),
    ]
    vision = [f for f in findings if f.enclave == "/cell/vision"]
    assert [f.field for f in vision] == ["nodes[0].node", "nodes[1].node"]
    assert all(f.level == "warning" for f in findings)
    assert len(findings) == 4 + 10  # 4 grants of the arm, 10 other nodes never seen (launch_listener too)


def test_wildcard_grant_used_by_an_observed_name_is_not_unused() -> None:
    policy = load_policy_text(_EXAMPLE_ARM.replace("[joint_states, ~/status]", "['*']"), "wild.yaml")
    log = ObservationLog()
    log.add_sample([NodeSample("arm_driver", "/cell", publish=("/cell/joint_states",))], 0.0)

    findings = unused_grants(policy, learn_policy(log, LearnOptions("x", (42,))), "in 1 s")

    assert "topics.publish" not in [f.field for f in findings]
