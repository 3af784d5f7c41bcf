"""``cobot-security policy validate|lint|import-sros2`` and bad policy input across commands."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from cobot_security.policy.load import load_policy

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "policies" / "workcell.yaml"
POLICIES = REPO / "test" / "assets" / "policies"
CLI_ASSETS = REPO / "test" / "assets" / "cli"

#: (policy file, line the error must name, text the error must contain: the field or the problem)
BAD_POLICIES = [
    pytest.param(POLICIES / "bad_syntax.yaml", 4, "expected valid YAML", id="malformed-yaml"),
    pytest.param(CLI_ASSETS / "malformed_quote.yaml", None, "expected valid YAML", id="malformed-quote"),
    pytest.param(POLICIES / "bad_unknown_key.yaml", 7, "enclaves./cell/a.topic:", id="unknown-key"),
    pytest.param(CLI_ASSETS / "unknown_governance_key.yaml", 6, "governance.enable_discovery_protection:",
                 id="unknown-governance-key"),
    pytest.param(POLICIES / "bad_topic_name.yaml", 11, "enclaves./cell/arm_driver.topics.publish[2]:",
                 id="invalid-ros-topic-name"),
    pytest.param(POLICIES / "bad_node_name.yaml", 8, "enclaves./cell/vision.nodes[1].name:", id="invalid-node-name"),
    pytest.param(CLI_ASSETS / "bad_namespace_chars.yaml", 7, "enclaves./cell/a.namespace:", id="invalid-namespace"),
    pytest.param(POLICIES / "bad_enclave_path.yaml", 6, "'/cell/../etc'", id="traversal-enclave-path"),
    pytest.param(POLICIES / "bad_duplicate_enclave.yaml", 9, "enclaves./cell/a:", id="duplicate-enclave"),
    pytest.param(POLICIES / "bad_duplicate_key.yaml", 9, "enclaves./cell/a.topics.publish:", id="duplicate-key"),
]


def _assert_one_error_line(result, command: str, policy: Path, line: int | None, text: str) -> None:
    assert result.code == 2, result.out + result.err
    assert len(result.err_lines) == 1, result.err
    assert result.err.startswith(f"cobot-security {command}: error: ")
    assert "Traceback" not in result.err
    location = f"{policy}:{line}:" if line is not None else f"{policy}:"
    assert location in result.err
    assert text in result.err


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "line", "text"), BAD_POLICIES)
def test_validate_bad_policy(cli, policy, line, text):
    result = cli("policy", "validate", "--policy", policy)

    assert result.out == ""
    _assert_one_error_line(result, "policy", policy, line, text)


@pytest.mark.parametrize(("policy", "line", "text"), BAD_POLICIES)
def test_init_with_bad_policy_writes_nothing(cli, tmp_path, policy, line, text):
    keystore = tmp_path / "ks"

    result = cli("init", "--keystore", keystore, "--policy", policy)

    _assert_one_error_line(result, "init", policy, line, text)
    assert not os.path.lexists(keystore)
    assert list(tmp_path.iterdir()) == []  # no staging directory left either


def test_init_with_bad_policy_leaves_existing_keystore(cli, example_keystore, tree_digest):
    before = tree_digest(example_keystore)
    policy = POLICIES / "bad_unknown_key.yaml"

    result = cli("init", "--keystore", example_keystore, "--force", "--policy", policy)

    _assert_one_error_line(result, "init", policy, 7, "enclaves./cell/a.topic:")
    assert tree_digest(example_keystore) == before
    assert sorted(p.name for p in example_keystore.parent.iterdir()) == ["ks"]


def test_enclave_create_with_bad_policy_leaves_keystore(cli, example_keystore, tree_digest):
    before = tree_digest(example_keystore)
    policy = POLICIES / "bad_duplicate_enclave.yaml"

    result = cli("enclave", "create", "/cell/a", "--force", "--keystore", example_keystore, "--policy", policy)

    _assert_one_error_line(result, "enclave", policy, 9, "enclaves./cell/a:")
    assert tree_digest(example_keystore) == before


@pytest.mark.parametrize("argv", [
    ["policy", "validate"],
    ["policy", "lint"],
    ["init", "--keystore", "{ks}"],
    ["enclave", "create", "/cell/a", "--keystore", "{ks}"],
])
def test_missing_policy_file(cli, tmp_path, argv):
    missing = tmp_path / "no_such_policy.yaml"
    keystore = tmp_path / "ks"

    result = cli(*[a.format(ks=keystore) for a in argv], "--policy", missing)

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert str(missing) in result.err
    assert not os.path.lexists(keystore)


def test_policy_that_is_a_directory(cli, tmp_path):
    result = cli("policy", "validate", "--policy", tmp_path)

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert str(tmp_path) in result.err


def test_policy_with_undecodable_bytes(cli, tmp_path):
    policy = tmp_path / "binary.yaml"
    policy.write_bytes(b"\xff\xfe\x00version: 1\n")

    result = cli("policy", "validate", "--policy", policy)

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert str(policy) in result.err


# --- validate / lint -------------------------------------------------------------------------


def test_validate_example_prints_summary(cli):
    policy = load_policy(EXAMPLE)
    nodes = sum(len(e.nodes) for e in policy.enclaves)

    result = cli("policy", "validate", "--policy", EXAMPLE)

    assert result.code == 0, result.err
    assert result.err == ""
    assert str(EXAMPLE) in result.out
    assert f"{len(policy.enclaves)} enclave(s)" in result.out
    assert f"{nodes} node(s)" in result.out
    assert policy.name in result.out


def test_validate_defaults_to_shipped_example(cli):
    result = cli("policy", "validate")

    assert result.code == 0, result.err
    assert "workcell.yaml" in result.out
    assert "example-cobot-cell" in result.out


def test_lint_example_has_no_findings(cli):
    result = cli("policy", "lint", "--policy", EXAMPLE, "--strict")

    assert result.code == 0, result.out + result.err
    assert "no findings" in result.out


def test_lint_weak_policy_fails_with_rows(cli):
    weak = POLICIES / "weak.yaml"

    result = cli("policy", "lint", "--policy", weak)

    assert result.code == 1
    assert result.err == ""
    rows = result.out.splitlines()[2:]
    errors = [r for r in rows if r.startswith("error")]
    warnings = [r for r in rows if r.startswith("warning")]
    assert errors and warnings
    fields = " ".join(rows)
    for field in ("governance.allow_unauthenticated_participants", "governance.enable_read_access_control",
                  "governance.protection.data"):
        assert any(field in r for r in errors), field
    assert any("wildcard '*'" in r for r in warnings)
    assert any("/cell/debug" in r and "topics.publish" in r for r in warnings)
    assert "certificates.enclave.duration" in fields


def test_lint_weak_policy_json(cli):
    result = cli("policy", "lint", "--policy", POLICIES / "weak.yaml", "--json")

    assert result.code == 1
    findings = json.loads(result.out)
    assert {f["level"] for f in findings} == {"error", "warning"}
    assert all(set(f) >= {"level", "enclave", "field", "message", "line"} for f in findings)
    assert {"enclave": "", "field": "governance.protection.data", "level": "error"}.items() <= next(
        f for f in findings if f["field"] == "governance.protection.data").items()


@pytest.mark.parametrize("policy", [CLI_ASSETS / "warnings_only.yaml", POLICIES / "minimal.yaml"])
def test_lint_warnings_fail_only_with_strict(cli, policy):
    relaxed = cli("policy", "lint", "--policy", policy)
    strict = cli("policy", "lint", "--policy", policy, "--strict")

    assert relaxed.code == 0, relaxed.out
    assert strict.code == 1, strict.out
    levels = {row.split()[0] for row in relaxed.out.splitlines()[2:]}
    assert levels == {"warning"}
    assert strict.out == relaxed.out


# --- import-sros2 ----------------------------------------------------------------------------


@pytest.fixture
def talker_listener_xml(oracles: Path) -> Path:
    path = oracles / "test_policies" / "talker_listener.policy.xml"
    assert path.is_file(), path
    return path


def test_import_sros2_writes_valid_policy(cli, tmp_path, talker_listener_xml):
    out = tmp_path / "out.yaml"

    result = cli("policy", "import-sros2", talker_listener_xml, "-o", out)

    assert result.code == 0, result.err
    assert str(out) in result.out
    assert "2 enclave(s)" in result.out
    data = yaml.safe_load(out.read_text())
    assert data["version"] == 1
    assert sorted(data["enclaves"]) == ["/talker_listener/listener", "/talker_listener/talker"]
    assert "chatter" in data["enclaves"]["/talker_listener/talker"]["topics"]["publish"]
    assert "chatter" in data["enclaves"]["/talker_listener/listener"]["topics"]["subscribe"]

    validated = cli("policy", "validate", "--policy", out)

    assert validated.code == 0, validated.err
    assert "2 enclave(s)" in validated.out


def test_import_sros2_to_stdout_matches_file(cli, tmp_path, talker_listener_xml):
    out = tmp_path / "out.yaml"
    assert cli("policy", "import-sros2", talker_listener_xml, "-o", out).code == 0

    result = cli("policy", "import-sros2", talker_listener_xml)

    assert result.code == 0, result.err
    assert result.out == out.read_text()


def test_import_sros2_refuses_to_overwrite(cli, tmp_path, talker_listener_xml):
    out = tmp_path / "out.yaml"
    out.write_bytes(b"# precious hand-written policy\n")

    result = cli("policy", "import-sros2", talker_listener_xml, "-o", out)

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert str(out) in result.err
    assert "--force" in result.err
    assert out.read_bytes() == b"# precious hand-written policy\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.yaml"]  # no temp file left


def test_import_sros2_force_overwrites(cli, tmp_path, talker_listener_xml):
    out = tmp_path / "out.yaml"
    out.write_bytes(b"# old\n")

    result = cli("policy", "import-sros2", talker_listener_xml, "-o", out, "--force")

    assert result.code == 0, result.err
    assert yaml.safe_load(out.read_text())["version"] == 1


def test_import_sros2_missing_file(cli, tmp_path):
    missing = tmp_path / "none.policy.xml"

    result = cli("policy", "import-sros2", missing, "-o", tmp_path / "out.yaml")

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert str(missing) in result.err
    assert list(tmp_path.iterdir()) == []


def test_import_sros2_rejects_external_entities(cli, tmp_path):
    xml = tmp_path / "xxe.policy.xml"
    xml.write_text(
        '<?xml version="1.0"?>\n'
        '<!DOCTYPE policy [<!ENTITY leak SYSTEM "file:///etc/hostname">]>\n'
        '<policy version="0.2.0"><enclaves><enclave path="/a"><profiles><profile ns="/" node="a">'
        '<topics publish="ALLOW"><topic>&leak;</topic></topics></profile></profiles></enclave></enclaves>'
        '</policy>\n'
    )

    result = cli("policy", "import-sros2", xml, "-o", tmp_path / "out.yaml")

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert str(xml) in result.err
    assert not (tmp_path / "out.yaml").exists()


def test_import_sros2_output_in_missing_directory(cli, tmp_path, talker_listener_xml):
    out = tmp_path / "no_such_dir" / "out.yaml"

    result = cli("policy", "import-sros2", talker_listener_xml, "-o", out)

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert str(out.parent) in result.err
    assert list(tmp_path.iterdir()) == []


def test_import_sros2_force_onto_directory(cli, tmp_path, talker_listener_xml):
    out = tmp_path / "a_directory"
    out.mkdir()

    result = cli("policy", "import-sros2", talker_listener_xml, "-o", out, "--force")

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert str(out) in result.err
    assert out.is_dir() and list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_directory"]
