"""policy.load: the example loads to the expected model; every malformed input is a located PolicyError."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from cobot_security.errors import PolicyError
from cobot_security.policy.load import load_policy, load_policy_text, parse_duration
from cobot_security.policy.model import GovernanceOptions, Lifetimes, Protection


def test_example_policy_loads(example_policy_path: Path) -> None:
    policy = load_policy(example_policy_path)
    assert policy.version == 1
    assert policy.domain_ids == (42,)
    assert policy.source == str(example_policy_path)
    assert policy.governance == GovernanceOptions()
    assert policy.lifetimes == Lifetimes()
    paths = [enclave.path for enclave in policy.enclaves]
    assert "/cobot_security/supervisor" in paths and "/cell/arm_driver" in paths
    supervisor = policy.enclave("/cobot_security/supervisor")
    assert supervisor is not None and supervisor.nodes[0].services_serve == ("/supervisor/get_report",)
    keystore_manager = policy.enclave("/cobot_security/keystore_manager")
    assert keystore_manager is not None
    assert keystore_manager.nodes[0].resolve(keystore_manager.nodes[0].services_serve[0]) == "/keystore_manager/rotate_due"  # noqa: E501 (test data kept on one line)
    assert all(enclave.line is not None for enclave in policy.enclaves)


def test_example_uses_design_node_names(example_policy_path: Path) -> None:
    policy = load_policy(example_policy_path)
    fqns = {node.fqn for enclave in policy.enclaves for node in enclave.nodes}
    assert {"/health_reporter", "/supervisor", "/keystore_manager"} <= fqns


def test_minimal_policy_model(policy_assets: Path) -> None:
    policy = load_policy(policy_assets / "minimal.yaml")
    talker = policy.enclave("/demo/talker")
    listener = policy.enclave("/demo/listener")
    assert talker is not None and listener is not None
    node = talker.nodes[0]
    assert (node.name, node.namespace, node.publish) == ("talker", "/demo", ("chatter", "~/status"))
    assert node.services_serve == ("~/reset",) and node.actions_serve == ("move",)
    assert node.line == 7 and talker.line == 6
    assert talker.builtins is True and listener.builtins is False


def test_nodes_form_defaults_and_line_numbers() -> None:
    text = """\
version: 1
name: c
domain_ids: [0, 232]
governance:
  protection: {data: SIGN}
certificates:
  enclave: {duration: 2160h, renew_before: 45m}
enclaves:
  /cell/vision:
    nodes:
      - name: camera
        topics: {publish: []}
      - name: detector
        namespace: /cell/
"""
    policy = load_policy_text(text, "inline.yaml")
    enclave = policy.enclaves[0]
    assert [node.name for node in enclave.nodes] == ["camera", "detector"]
    assert [node.line for node in enclave.nodes] == [11, 13]
    assert enclave.nodes[0].namespace == "/" and enclave.nodes[1].namespace == "/cell"
    assert enclave.nodes[0].publish == ()
    assert policy.domain_ids == (0, 232)
    assert policy.governance.data_protection is Protection.SIGN
    assert policy.governance.rtps_protection is Protection.ENCRYPT
    assert policy.lifetimes.enclave_duration == dt.timedelta(days=90)
    assert policy.lifetimes.renew_before == dt.timedelta(minutes=45)
    assert policy.lifetimes.ca_duration == dt.timedelta(days=3650)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90d", dt.timedelta(days=90)), ("2160h", dt.timedelta(hours=2160)), ("45m", dt.timedelta(minutes=45)),
     ("30s", dt.timedelta(seconds=30))],
)
def test_parse_duration(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["0d", "90", "d", "1.5d", "-3d", "90 d", "90D", "1w"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# (file, line, dotted field, fragment of the expectation)
BAD_CASES = [
    ("bad_duplicate_key.yaml", 9, "enclaves./cell/a.topics.publish", "first defined at line 8"),
    ("bad_unknown_key.yaml", 7, "enclaves./cell/a.topic", "one of the keys node, namespace, topics"),
    ("bad_unknown_top_key.yaml", 4, "domain", "one of the keys version, name, domain_ids"),
    ("bad_type_builtins.yaml", 7, "enclaves./cell/a.builtins", "true or false"),
    ("bad_type_list.yaml", 8, "enclaves./cell/a.topics.publish", "a list of names"),
    ("bad_topic_name.yaml", 11, "enclaves./cell/arm_driver.topics.publish[2]", "a ROS name"),
    ("bad_node_name.yaml", 8, "enclaves./cell/vision.nodes[1].name", "a node name"),
    ("bad_namespace.yaml", 7, "enclaves./cell/a.namespace", "an absolute namespace"),
    ("bad_enclave_path.yaml", 6, "enclaves./cell/../etc", "an absolute enclave name"),
    ("bad_duplicate_enclave.yaml", 9, "enclaves./cell/a", "each enclave path once (first defined at line 5)"),
    ("bad_nested_enclave.yaml", 7, "enclaves./cell/arm", "do not nest"),
    ("bad_duplicate_node.yaml", 12, "enclaves./cell/b.nodes[1]", "already in enclave /cell/a at line 6"),
    ("bad_missing_version.yaml", 1, "version", "a required key 'version'"),
    ("bad_version.yaml", 1, "version", "version 1"),
    ("bad_domain_id.yaml", 5, "domain_ids[1]", "a domain id 0..232"),
    ("bad_domain_ids_empty.yaml", 3, "domain_ids", "a non-empty list of domain ids"),
    ("bad_duration.yaml", 6, "certificates.enclave.duration", "a duration like 90d"),
    ("bad_duration_zero.yaml", 6, "certificates.crl.next_update", "a duration like 90d"),
    ("bad_renew_before.yaml", 7, "certificates.enclave.renew_before", "shorter than the enclave duration 30d"),
    ("bad_node_and_nodes.yaml", 7, "enclaves./cell/a.nodes", "either 'node'"),
    ("bad_no_node.yaml", 5, "enclaves./cell/a", "a 'node' key"),
    ("bad_protection.yaml", 6, "governance.protection.data", "NONE, SIGN or ENCRYPT"),
]


@pytest.mark.parametrize(("name", "line", "field", "expected"), BAD_CASES, ids=[case[0] for case in BAD_CASES])
def test_bad_policy_is_located_policy_error(
    policy_assets: Path, name: str, line: int, field: str, expected: str
) -> None:
    path = policy_assets / name
    with pytest.raises(PolicyError, match=re.escape(f"{path}:{line}: {field}: expected")) as info:
        load_policy(path)
    error = info.value
    assert error.file == str(path)
    assert error.line == line
    assert error.field == field
    assert expected in error.expected
    assert error.exit_code == 2


def test_duplicate_key_names_both_lines(policy_assets: Path) -> None:
    path = policy_assets / "bad_duplicate_key.yaml"
    with pytest.raises(PolicyError, match="duplicate") as info:
        load_policy(path)
    assert "line 8" in str(info.value) and "line 9" in str(info.value)


def test_yaml_syntax_error_has_line(policy_assets: Path) -> None:
    path = policy_assets / "bad_syntax.yaml"
    with pytest.raises(PolicyError, match=re.escape(f"{path}:4: expected valid YAML")) as info:
        load_policy(path)
    assert info.value.line == 4
    assert "flow sequence at line 3" in str(info.value)


def test_missing_file_is_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(PolicyError, match="readable policy file") as info:
        load_policy(path)
    assert info.value.file == str(path)
    assert "No such file" in str(info.value)


def test_directory_is_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="readable policy file") as info:
        load_policy(tmp_path)
    assert info.value.file == str(tmp_path)


def test_binary_file_is_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00version: 1")
    with pytest.raises(PolicyError, match="UTF-8") as info:
        load_policy(path)
    assert info.value.file == str(path)


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        ("", None, 1),
        ("- 1\n- 2\n", None, 1),
        ("version: '1'\nname: c\ndomain_ids: [0]\nenclaves: {/a: {node: a}}\n", "version", 1),
        ("version: true\nname: c\ndomain_ids: [0]\nenclaves: {/a: {node: a}}\n", "version", 1),
        ("version: 1\nname: c\ndomain_ids: [-1]\nenclaves: {/a: {node: a}}\n", "domain_ids[0]", 3),
        ("version: 1\nname: c\ndomain_ids: [true]\nenclaves: {/a: {node: a}}\n", "domain_ids[0]", 3),
        ("version: 1\nname: c\ndomain_ids: [0, 0]\nenclaves: {/a: {node: a}}\n", "domain_ids[1]", 3),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves: {}\n", "enclaves", 4),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves: {/a: [x]}\n", "enclaves./a", 4),
        ("version: 1\nname: [c]\ndomain_ids: [0]\nenclaves: {/a: {node: a}}\n", "name", 2),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /a:\n    nodes: []\n", "enclaves./a.nodes", 6),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /a:\n    nodes: [{name: a}]\n    topics: {}\n",
         "enclaves./a.topics", 7),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /a:\n    nodes: [{namespace: /}]\n",
         "enclaves./a.nodes[0].name", 6),
        # Unknown keys in the nodes: list form (issue 16: only the single-node form was tested).
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /a:\n    nodes:\n      - name: a\n"
         "        topic: {publish: [x]}\n", "enclaves./a.nodes[0].topic", 8),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /a:\n    nodes:\n      - name: a\n"
         "      - name: b\n        node: b\n", "enclaves./a.nodes[1].node", 9),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /a:\n    nodes:\n      - name: a\n"
         "        topics: {publsh: [x]}\n", "enclaves./a.nodes[0].topics.publsh", 8),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /a:\n    nodes:\n      - name: a\n"
         "        services: {reply: [x]}\n", "enclaves./a.nodes[0].services.reply", 8),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /a:\n    node: a\n    topics: {publish: [1]}\n",
         "enclaves./a.topics.publish[0]", 7),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /a:\n    node: a\n    services: {reply: []}\n",
         "enclaves./a.services.reply", 7),
        ("version: 1\nname: c\ndomain_ids: [0]\ncertificates: {ca: {duration: 10}}\nenclaves: {/a: {node: a}}\n",
         "certificates.ca.duration", 4),
        ("version: 1\nname: c\ndomain_ids: [0]\ngovernance: {enable_join_access_control: 1}\n"
         "enclaves: {/a: {node: a}}\n", "governance.enable_join_access_control", 4),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves: {/a: {node: a}, /a/b: {node: b}}\n", "enclaves./a/b", 4),
        ("version: 1\nname: c\ndomain_ids: [0]\nenclaves: {/a: {node: a, <<: {x: 1}}}\n", "enclaves./a.<<", 4),
    ],
)
def test_more_bad_inputs(text: str, field: str | None, line: int) -> None:
    with pytest.raises(PolicyError, match=re.escape("inline.yaml:")) as info:
        load_policy_text(text, "inline.yaml")
    assert info.value.field == field
    assert info.value.line == line
    assert info.value.file == "inline.yaml"


def test_alias_and_anchor_share_grants() -> None:
    text = """\
version: 1
name: c
domain_ids: [0]
enclaves:
  /a: {node: a, topics: &t {publish: [x]}}
  /b: {node: b, topics: *t}
"""
    policy = load_policy_text(text, "inline.yaml")
    assert [enclave.nodes[0].publish for enclave in policy.enclaves] == [("x",), ("x",)]


def test_middlewares_default_to_cyclone_dds_and_the_example_runs_all_three(example_policy_path: Path) -> None:
    minimal = load_policy_text("version: 1\nname: x\ndomain_ids: [1]\nenclaves: {/a: {node: a}}\n", "x.yaml")
    assert minimal.middlewares == ("cyclonedds",)
    assert load_policy(example_policy_path).middlewares == ("cyclonedds", "fastdds", "zenoh")


@pytest.mark.parametrize(("value", "message"), [
    ("[]", r"x\.yaml:4: middlewares: expected a non-empty list of middlewares \(cyclonedds, fastdds, zenoh\), "
           r"got an empty list"),
    ("[zenoh, zenoh]", r"x\.yaml:4: middlewares\[1\]: expected each middleware once, got zenoh again"),
    ("[opendds]", r"x\.yaml:4: middlewares\[0\]: expected one of cyclonedds, fastdds, zenoh, got 'opendds'"),
    ("fastdds", r"x\.yaml:4: middlewares: expected a non-empty list of middlewares"),
])
def test_middlewares_are_validated(value: str, message: str) -> None:
    text = f"version: 1\nname: x\ndomain_ids: [1]\nmiddlewares: {value}\nenclaves: {{/a: {{node: a}}}}\n"
    with pytest.raises(PolicyError, match=message):
        load_policy_text(text, "x.yaml")
