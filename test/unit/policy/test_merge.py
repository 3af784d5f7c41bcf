"""``learn --merge``: observed grants added to the existing text, comments kept, nothing removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from cobot_security.errors import PolicyError
from cobot_security.policy.diff import diff_policies
from cobot_security.policy.learn import LearnOptions, learn_policy
from cobot_security.policy.load import load_policy, load_policy_text
from cobot_security.policy.merge import MERGE_MARK, merge_learned
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.policy.observation import NodeSample, ObservationLog


def _learned(*samples: NodeSample) -> WorkcellPolicy:
    log = ObservationLog()
    log.add_sample(list(samples), 0.0)
    return learn_policy(log, LearnOptions("learned", (42,)))


def _added_lines(before: str, after: str) -> list[str]:
    """Lines of ``after`` that ``before`` does not have (by content, order kept)."""
    old = before.splitlines()
    return [line for line in after.splitlines() if line not in old]


def test_merge_into_the_example_keeps_every_line_and_comment(example_policy_path: Path) -> None:
    text = example_policy_path.read_text()
    learned = _learned(
        NodeSample("arm_driver", "/cell", publish=("/cell/joint_states", "/cell/arm_driver/temperature"),
                   services_call=("/cell/gripper/reset",)),
        NodeSample("gripper", "/cell", publish=("/cell/gripper/status", "/cell/gripper/force")),
        NodeSample("mes_bridge", "/cell", subscribe=("/cell/cell_status", "/cell/alarms")),
        NodeSample("camera", "/cell", publish=("/cell/image_raw", "/cell/depth")),
        NodeSample("conveyor", "/cell", publish=("/cell/conveyor/speed",)),
        NodeSample("safety_monitor", "/cell", actions_call=("/cell/arm_driver/follow_joint_trajectory",)),
    )

    result = merge_learned(text, "workcell.yaml", learned, "in 30 s of observation")

    new_lines = result.text.splitlines()
    # Nothing removed: every line is still there, but for flow lists extended in place, and every
    # comment is still there (flow lists keep theirs after the closing bracket).
    changed = [line for line in text.splitlines() if line not in new_lines]
    assert len(changed) == 2 and all("]" in line for line in changed)
    assert all(line[line.index("#"):] in result.text for line in text.splitlines() if "#" in line)
    added = _added_lines(text, result.text)
    assert "        - ~/temperature" in added  # block list: a new item at the list's indentation
    assert "      publish: [~/status, ~/force]                    # /cell/gripper/status" in added  # flow list
    assert "      call: [gripper/reset]" in added  # a new key in the arm's services mapping
    assert "        - alarms" in added
    assert "          publish: [image_raw, camera_info, depth]  # /cell/image_raw, /cell/camera_info" in added
    assert "      publish: [~/speed]" in added  # the new enclave, in the file's flow style for lists
    assert ("  # Learned: /cell/conveyor (not in this policy before); review before signing. Set hosts: to the "
            "machine(s) running it (now ca_pc only).") in added
    assert "    hosts: [ca_pc]" in added  # no member host gets the new identity before review
    assert "      call: [arm_driver/follow_joint_trajectory]" in added  # a new section of a block mapping
    assert result.new_enclaves == ("/cell/conveyor",)
    assert len(result.additions) == 7
    merged = load_policy_text(result.text, "merged.yaml")
    # The merged policy grants exactly the example plus what was observed beyond it.
    changes = diff_policies(load_policy(example_policy_path), merged).changes
    assert {c.change for c in changes} == {"added"}
    assert {c.ros_name for c in changes if c.kind != "builtin" and c.enclave != "/cell/conveyor"} == {
        "/cell/arm_driver/temperature", "/cell/gripper/reset", "/cell/gripper/force", "/cell/alarms", "/cell/depth",
        "/cell/arm_driver/follow_joint_trajectory"}


def test_merge_twice_adds_nothing_the_second_time(example_policy_path: Path) -> None:
    learned = _learned(NodeSample("arm_driver", "/cell", publish=("/cell/extra",)),
                       NodeSample("new", "/other", publish=("/other/x",)))
    first = merge_learned(example_policy_path.read_text(), "w.yaml", learned, "in 1 s")

    second = merge_learned(first.text, "w.yaml", learned, "in 1 s")

    assert second.additions == ()
    assert second.text.splitlines()[2:] == first.text.splitlines()[2:]
    assert sum(line.startswith(MERGE_MARK) for line in second.text.splitlines()) == 2  # header replaced, not stacked


def test_merge_into_flow_and_shorthand_layouts() -> None:
    text = (
        "version: 1\nname: c\ndomain_ids: [0]\n"
        "enclaves: {/a/n: {node: n, namespace: /a, topics: {publish: [t]}}}\n"
    )
    learned = _learned(NodeSample("n", "/a", publish=("/a/t", "/a/u"), subscribe=("/a/v",),
                                  services_serve=("/a/n/s",)),
                       NodeSample("m", "/b", actions_call=("/b/act",)))

    result = merge_learned(text, "flow.yaml", learned, "in 1 s")

    merged = load_policy_text(result.text, "flow.yaml")
    node = merged.enclave("/a/n").nodes[0]
    assert node.publish == ("t", "u") and node.subscribe == ("v",) and node.services_serve == ("~/s",)
    assert merged.enclave("/b/m").nodes[0].actions_call == ("act",)


def test_new_node_under_an_existing_enclave_path_gets_a_free_path() -> None:
    text = "version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /cell:\n    node: main\n    namespace: /cell\n"
    learned = _learned(NodeSample("arm", "/cell", publish=("/cell/x",)))

    result = merge_learned(text, "p.yaml", learned, "in 1 s")

    assert result.new_enclaves == ("/cell_1/arm",)
    load_policy_text(result.text, "p.yaml")


def test_merge_reports_unused_grants(example_policy_path: Path) -> None:
    learned = _learned(NodeSample("arm_driver", "/cell", publish=("/cell/joint_states",)))

    result = merge_learned(example_policy_path.read_text(), "w.yaml", learned, "in 5 s of observation")

    assert len(result.unused) == 14  # the arm's 4 grants, 10 nodes never seen (launch_listener too)
    assert result.unused[0].message == (
        "unused grant: '~/status' of node /cell/arm_driver was never observed in 5 s of observation")
    assert f"{MERGE_MARK}14 unused grant(s) kept" in result.text


def test_merge_into_an_invalid_policy_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="bad.yaml:1: .*expected"):
        merge_learned("version: 2\n", "bad.yaml", _learned(NodeSample("a", "/")), "in 1 s")
