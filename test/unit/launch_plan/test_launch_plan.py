"""launch_plan: enclave arguments and environment per policy node, the refusal, restart planning.

Pure: needs neither launch nor rclpy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cobot_security.errors import InputError, InvalidNameError
from cobot_security.launch_plan import (
    STACK_NODES,
    NodeNotInPolicyError,
    RestartRequest,
    demo_node_entries,
    is_stack_topic,
    parse_launch_bool,
    plan_rolling_restart,
    restart_requests,
    restart_targets,
    secure_node_spec,
    stack_defaults,
)
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import WorkcellPolicy

REPO = Path(__file__).resolve().parents[3]
WORKCELL = REPO / "policies" / "workcell.yaml"
KEYSTORE = Path("/etc/cell/keystore")

#: Every node of the example policy → its enclave (as written in policies/workcell.yaml).
EXPECTED_ENCLAVES = {
    ("arm_driver", "/cell"): "/cell/arm_driver",
    ("gripper", "/cell"): "/cell/gripper",
    ("camera", "/cell"): "/cell/vision",
    ("detector", "/cell"): "/cell/vision",
    ("safety_monitor", "/cell"): "/cell/safety_monitor",
    ("cell_controller", "/cell"): "/cell/cell_controller",
    ("mes_bridge", "/cell"): "/cell/mes_bridge",
    ("health_reporter", "/"): "/cobot_security/health_reporter",
    ("supervisor", "/"): "/cobot_security/supervisor",
    ("keystore_manager", "/"): "/cobot_security/keystore_manager",
    ("launch_listener", "/"): "/cobot_security/launch_listener",
}


@pytest.fixture(scope="module")
def policy() -> WorkcellPolicy:
    return load_policy(WORKCELL)


def test_expected_table_covers_every_policy_node(policy: WorkcellPolicy) -> None:
    nodes = {(n.name, n.namespace) for e in policy.enclaves for n in e.nodes}
    assert nodes == set(EXPECTED_ENCLAVES)


@pytest.mark.parametrize(("node", "enclave"), sorted(EXPECTED_ENCLAVES.items()))
def test_spec_for_every_policy_node(policy: WorkcellPolicy, node: tuple[str, str], enclave: str) -> None:
    name, namespace = node
    spec = secure_node_spec(policy, KEYSTORE, "pkg", "exe", name, namespace, policy_source=str(WORKCELL))
    assert (spec.package, spec.executable, spec.name, spec.namespace) == ("pkg", "exe", name, namespace)
    assert spec.enclave == enclave
    assert spec.arguments == ("--ros-args", "--enclave", enclave)
    assert spec.env == {
        "ROS_SECURITY_ENABLE": "true",
        "ROS_SECURITY_STRATEGY": "Enforce",
        "ROS_SECURITY_KEYSTORE": "/etc/cell/keystore",
    }
    assert spec.warning is None


def test_unsafe_no_security_keeps_enclave_switches_security_off_and_warns(policy: WorkcellPolicy) -> None:
    spec = secure_node_spec(policy, KEYSTORE, "pkg", "exe", "gripper", "/cell",
                            policy_source=str(WORKCELL), unsafe_no_security=True)
    assert spec.arguments == ("--ros-args", "--enclave", "/cell/gripper")
    # Explicitly false: an inherited ROS_SECURITY_ENABLE=true from the shell must not win (issue 14 #2).
    assert spec.env["ROS_SECURITY_ENABLE"] == "false"
    assert "ROS_SECURITY_STRATEGY" not in spec.env
    assert spec.warning is not None
    assert "unsafe_no_security" in spec.warning and "/cell/gripper" in spec.warning
    assert "ROS_SECURITY_ENABLE=false" in spec.warning and "not set" not in spec.warning


def test_node_not_in_policy_is_refused_naming_node_and_file(policy: WorkcellPolicy) -> None:
    with pytest.raises(NodeNotInPolicyError) as caught:
        secure_node_spec(policy, KEYSTORE, "pkg", "exe", "foo", "/cell", policy_source="cells/line3.yaml")
    assert str(caught.value) == (
        "node /cell/foo has no enclave in policy cells/line3.yaml: add it under enclaves: (see docs/policy.md)")
    assert isinstance(caught.value, InputError)
    assert caught.value.exit_code == 2
    assert caught.value.node == "/cell/foo"
    assert caught.value.file == "cells/line3.yaml"


def test_same_name_other_namespace_is_not_in_policy(policy: WorkcellPolicy) -> None:
    with pytest.raises(NodeNotInPolicyError, match="node /arm_driver has no enclave"):
        secure_node_spec(policy, KEYSTORE, "pkg", "exe", "arm_driver", "/", policy_source=str(WORKCELL))


def test_invalid_node_name_is_an_input_error(policy: WorkcellPolicy) -> None:
    with pytest.raises(InvalidNameError):
        secure_node_spec(policy, KEYSTORE, "pkg", "exe", "bad name", "/cell", policy_source=str(WORKCELL))


def test_demo_entries_skip_stack_nodes_and_carry_every_grant(policy: WorkcellPolicy) -> None:
    entries = demo_node_entries(policy)
    fqns = [e.fqn for e in entries]
    assert fqns == ["/cell/arm_driver", "/cell/gripper", "/cell/camera", "/cell/detector",
                    "/cell/safety_monitor", "/cell/cell_controller", "/cell/mes_bridge"]
    assert not set(fqns) & set(STACK_NODES)
    arm = entries[0]
    assert arm.enclave == "/cell/arm_driver"
    assert arm.publish == ("/cell/joint_states", "/cell/arm_driver/status")
    assert arm.subscribe == ("/cell/arm_driver/joint_trajectory",)
    assert arm.services_serve == ("/cell/arm_driver/set_speed_scaling",)
    assert arm.actions_serve == ("/cell/arm_driver/follow_joint_trajectory",)
    controller = entries[-2]
    assert controller.actions_call == ("/cell/arm_driver/follow_joint_trajectory", "/cell/gripper/gripper_command")
    assert controller.services_call == ("/cell/arm_driver/set_speed_scaling", "/cell/safety_monitor/trigger_stop")
    mes = entries[-1]
    assert mes.subscribe == ("/cell/cell_status", "/cell/production_count", "/cobot_security/posture")
    assert is_stack_topic("/cobot_security/posture") and is_stack_topic("/diagnostics")
    assert not is_stack_topic("/diagnostics_extra") and not is_stack_topic("/cell/cell_status")
    assert mes.parameters() == {"subscribe": list(mes.subscribe), "publish": ["/cell/work_orders"],
                                "call": ["/cell/cell_controller/get_cell_state"]}


def test_restart_targets_are_the_nodes_of_rotated_enclaves(policy: WorkcellPolicy) -> None:
    assert restart_targets(policy, ["/cell/vision"]) == ["/cell/camera", "/cell/detector"]
    assert restart_targets(policy, {"/cell/mes_bridge", "/cell/arm_driver"}) == ["/cell/arm_driver", "/cell/mes_bridge"]
    assert restart_targets(policy, ["/cell/not_in_policy"]) == []
    assert restart_targets(policy, []) == []


def test_restart_requests_from_health_statuses() -> None:
    statuses = [
        ("cobot_security/restart_required/cell/vision", {"not_after": "2027-02-27T12:00:00Z"}, "rotated"),
        ("cobot_security/cert_expiry/cell/vision", {}, "ok"),
        ("cobot_security/restart_required/cell/gripper", {}, "rotated at 12:00"),
        ("other/restart_required/cell/arm_driver", {}, "not ours"),
    ]
    assert restart_requests(statuses) == [
        RestartRequest("/cell/vision", "2027-02-27T12:00:00Z"),
        RestartRequest("/cell/gripper", "rotated at 12:00"),
    ]


def test_plan_restarts_running_nodes_once_per_rotation(policy: WorkcellPolicy) -> None:
    request = RestartRequest("/cell/vision", "2027-02-27T12:00:00Z")
    running = ["/cell/camera", "/cell/detector", "/cell/arm_driver"]
    assert plan_rolling_restart(policy, [request], running, handled=[]) == ["/cell/camera", "/cell/detector"]
    assert plan_rolling_restart(policy, [request], running, handled=[request]) == []
    later = RestartRequest("/cell/vision", "2027-05-28T12:00:00Z")
    assert plan_rolling_restart(policy, [later], running, handled=[request]) == ["/cell/camera", "/cell/detector"]
    assert plan_rolling_restart(policy, [request], ["/cell/arm_driver"], handled=[]) == []


def test_parse_launch_bool() -> None:
    assert parse_launch_bool("True", "secure") is True
    assert parse_launch_bool("false", "secure") is False
    with pytest.raises(InputError, match="secure: expected true or false, got 'maybe'"):
        parse_launch_bool("maybe", "secure")


def test_stack_defaults_follow_design() -> None:
    with_env = stack_defaults({"ROS_SECURITY_KEYSTORE": "/ks", "ROS_DOMAIN_ID": "42"})
    assert with_env["keystore"] == "/ks"
    assert with_env["domain_id"] == "42"
    bare = stack_defaults({})
    assert bare["keystore"] == str(Path("keystores") / "default")
    assert bare["domain_id"] == "0"
    assert bare["period_s"] == "1.0"
    assert Path(bare["policy"]).name == "workcell.yaml" and Path(bare["policy"]).is_file()
    assert Path(bare["controls"]).name == "posture_controls.yaml"


def test_install_problem_names_what_to_run(tmp_path: Path) -> None:
    from cobot_security.launch_plan.preflight import LAUNCHED_EXECUTABLES, install_problem

    venv = tmp_path / "venv"
    missing = install_problem(None, {}, venv)
    assert missing is not None
    assert missing.startswith("package cobot_security is not in the ament index (AMENT_PREFIX_PATH=unset)")
    assert f"export AMENT_PREFIX_PATH={venv}" in missing
    libexec = tmp_path / "prefix" / "lib" / "cobot_security"
    libexec.mkdir(parents=True)
    no_scripts = install_problem(tmp_path / "prefix", {"AMENT_PREFIX_PATH": str(tmp_path / "prefix")}, venv)
    assert no_scripts is not None and "lacks health_reporter, supervisor, keystore_manager, demo_node" in no_scripts
    for name in LAUNCHED_EXECUTABLES:
        (libexec / name).write_text("")
    assert install_problem(tmp_path / "prefix", {}, venv) is None


def test_security_unavailable_names_the_way_out_and_its_cost() -> None:
    from cobot_security.launch_plan.preflight import security_unavailable

    line = security_unavailable("rmw_fastrtps_cpp", "no security libraries")
    assert "\n" not in line
    assert "pass secure:=false" in line and "no authentication, no encryption and no access control" in line
    assert "rmw_fastrtps_cpp" in line and "no security libraries" in line
