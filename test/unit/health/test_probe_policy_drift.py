"""policy_drift: every endpoint a live node uses is granted, else the YAML that would grant it."""

from __future__ import annotations

from pathlib import Path

import yaml

from cobot_security import checks
from cobot_security.health.drift_probes import MAX_YAML_CHARS, probe_policy_drift
from cobot_security.health.graph_probes import GraphFacts
from cobot_security.health.reporter import ReporterConfig, collect_findings
from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.load import load_policy, load_policy_text
from cobot_security.policy.observation import NodeSample
from cobot_security.status import Level

ARM = "/cell/arm_driver"


def _arm(**fields: tuple[str, ...]) -> NodeSample:
    base = dict(publish=("/cell/joint_states", f"{ARM}/status", "/rosout"),
                subscribe=(f"{ARM}/joint_trajectory",), services_serve=(f"{ARM}/set_speed_scaling",
                                                                        f"{ARM}/get_parameters"),
                actions_serve=(f"{ARM}/follow_joint_trajectory",))
    base.update(fields)
    return NodeSample("arm_driver", "/cell", "/cell/arm_driver", **base)


def test_granted_endpoints_are_ok(example_policy_path: Path) -> None:
    findings = probe_policy_drift(GraphFacts(endpoints=(_arm(),)), load_policy(example_policy_path))

    assert [(f.check, f.subject, f.level) for f in findings] == [(checks.POLICY_DRIFT, ARM, Level.OK)]


def test_ungranted_subscriber_service_and_action_give_the_yaml_that_grants_them(example_policy_path: Path) -> None:
    policy = load_policy(example_policy_path)
    sample = _arm(subscribe=(f"{ARM}/joint_trajectory", "/cell/detections"),
                  services_call=("/cell/safety_monitor/trigger_stop",),
                  actions_call=("/cell/gripper/gripper_command",),
                  services_serve=(f"{ARM}/reset",))

    (finding,) = probe_policy_drift(GraphFacts(endpoints=(sample,)), policy)

    assert finding.level is Level.ERROR
    assert finding.message == (
        "4 observed endpoint(s) not granted by the policy (topics.subscribe: /cell/detections; "
        "services.serve: /cell/arm_driver/reset; services.call: /cell/safety_monitor/trigger_stop; "
        "actions.call: /cell/gripper/gripper_command)")
    snippet = finding.value("grant_yaml")
    assert snippet == (
        "enclaves:\n"
        "  /cell/arm_driver:\n"
        "    topics:\n"
        "      subscribe: [detections]\n"
        "    services:\n"
        "      serve: [~/reset]\n"
        "      call: [safety_monitor/trigger_stop]\n"
        "    actions:\n"
        "      call: [gripper/gripper_command]\n")


def test_grant_yaml_for_a_node_of_a_composed_enclave_names_the_node(example_policy_path: Path) -> None:
    sample = NodeSample("camera", "/cell", "/cell/vision", publish=("/cell/image_raw", "/cell/depth"))

    (finding,) = probe_policy_drift(GraphFacts(endpoints=(sample,)), load_policy(example_policy_path))

    assert yaml.safe_load(finding.value("grant_yaml")) == {
        "enclaves": {"/cell/vision": {"nodes": [{"name": "camera", "topics": {"publish": ["depth"]}}]}}}


def test_node_missing_from_the_policy_gets_a_whole_enclave_that_loads(example_policy_path: Path) -> None:
    sample = NodeSample("conveyor", "/cell", "/", publish=("/cell/conveyor/speed", "/rosout"),
                        actions_serve=("/cell/conveyor/move",))

    (finding,) = probe_policy_drift(GraphFacts(endpoints=(sample,)), load_policy(example_policy_path))

    snippet = finding.value("grant_yaml")
    policy = load_policy_text("version: 1\nname: x\ndomain_ids: [1]\n" + snippet, "snippet.yaml")
    enclave = policy.enclave("/cell/conveyor")
    assert enclave is not None
    assert "rt/cell/conveyor/speed" in compute_dds_grants(enclave).publish
    assert enclave.nodes[0].actions_serve == ("~/move",)


def test_hidden_nodes_are_skipped_and_huge_drift_is_truncated(example_policy_path: Path) -> None:
    flood = NodeSample("arm_driver", "/cell", "/cell/arm_driver",
                       publish=tuple(f"/cell/flood_{i:05d}" for i in range(2000)))

    findings = probe_policy_drift(GraphFacts(endpoints=(NodeSample("_daemon", "/", publish=("/x",)), flood)),
                                  load_policy(example_policy_path))

    assert [f.subject for f in findings] == [ARM]
    assert len(findings[0].value("grant_yaml")) <= MAX_YAML_CHARS + 40
    assert findings[0].value("grant_yaml").endswith("# ... (truncated)\n")


def test_the_reporter_runs_the_drift_probe_with_the_graph(example_policy_path: Path, tmp_path: Path,
                                                         fixed_now) -> None:
    config = ReporterConfig(keystore=tmp_path / "ks", policy=load_policy(example_policy_path), expected_uid=0,
                            host="host")
    graph = GraphFacts(endpoints=(_arm(publish=("/cell/extra",)),))

    findings = [f for f in collect_findings(config, fixed_now, {}, graph) if f.check == checks.POLICY_DRIFT]

    assert [(f.subject, f.level) for f in findings] == [(ARM, Level.ERROR)]
    assert "topics.publish: /cell/extra" in findings[0].message
