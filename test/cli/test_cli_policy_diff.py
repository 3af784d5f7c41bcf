"""``cobot-security policy diff`` and the input checks of ``policy learn`` / ``lint --observed``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "policies" / "workcell.yaml"


@pytest.fixture
def widened(tmp_path: Path) -> Path:
    """The example with a wildcard publish for the MES bridge (the classic 'just make it work' edit)."""
    path = tmp_path / "widened.yaml"
    path.write_text(EXAMPLE.read_text().replace("publish: [work_orders]", "publish: [work_orders, '*']"))
    return path


def test_diff_table_names_enclave_direction_kind_and_dds_name(cli, widened: Path) -> None:
    result = cli("policy", "diff", EXAMPLE, widened)

    assert result.code == 0, result.err
    row = [line for line in result.out.splitlines() if "rt/cell/*" in line]
    assert len(row) == 1
    assert row[0].split() == ["/cell/mes_bridge", "+", "publish", "topic", "/cell/*", "rt/cell/*", "widens"]
    assert result.out.splitlines()[-1] == "1 enclave(s) changed: 1 grant(s) added, 0 removed; privilege WIDENS"


def test_fail_on_widen_is_a_ci_gate(cli, widened: Path) -> None:
    assert cli("policy", "diff", EXAMPLE, widened, "--fail-on-widen").code == 1
    assert cli("policy", "diff", widened, EXAMPLE, "--fail-on-widen").code == 0  # narrowing passes
    assert cli("policy", "diff", EXAMPLE, EXAMPLE, "--fail-on-widen").code == 0


def test_diff_json_and_markdown(cli, widened: Path) -> None:
    body = json.loads(cli("policy", "diff", EXAMPLE, widened, "--format", "json").out)
    markdown = cli("policy", "diff", EXAMPLE, widened, "--format", "markdown").out

    assert body["widens"] is True
    assert body["enclaves"] == [{"enclave": "/cell/mes_bridge", "status": "changed", "changes": [
        {"change": "added", "direction": "publish", "kind": "topic", "ros_name": "/cell/*",
         "dds_name": "rt/cell/*", "widens": True}]}]
    assert "### `/cell/mes_bridge` (changed)" in markdown
    assert "| + | publish | topic | `/cell/*` | `rt/cell/*` | **yes** |" in markdown
    assert markdown.rstrip().endswith("**Privilege:** widens.")


def test_diff_with_keystore_names_the_enclaves_reconcile_would_resign(cli, example_keystore: Path,
                                                                     widened: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(widened.read_text()
                     + "\n  /cell/conveyor:\n    node: conveyor\n    namespace: /cell\n    hosts: [cell_pc]\n")

    result = cli("policy", "diff", EXAMPLE, extra, "--keystore", example_keystore)
    same = cli("policy", "diff", EXAMPLE, EXAMPLE, "--keystore", example_keystore, "--format", "json")

    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == "reconcile would: create /cell/conveyor, resign /cell/mes_bridge"
    assert json.loads(same.out)["reconcile"] == []


@pytest.mark.parametrize("content", [
    "enclaves: [\n", "version: 1\nname: x\n", "\xff",
    "version: 1\nname: x\ndomain_ids: [1]\nenclaves: {/a: {node: 'b c'}}\n",
])
def test_diff_of_malformed_files_is_one_line_and_exit_2(cli, tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content.encode("latin-1"))

    for argv in ((bad, EXAMPLE), (EXAMPLE, bad)):
        result = cli("policy", "diff", *argv)
        assert result.code == 2
        assert len(result.err_lines) == 1, result.err
        assert result.err.startswith(f"cobot-security policy: error: {bad}")


def test_diff_of_a_missing_file(cli, tmp_path: Path) -> None:
    result = cli("policy", "diff", EXAMPLE, tmp_path / "nope.yaml")

    assert result.code == 2 and len(result.err_lines) == 1 and "nope.yaml" in result.err


@pytest.mark.parametrize(("argv", "message"), [
    (["--duration", "0"], "--duration: expected seconds in (0, 86400], got 0.0"),
    (["--duration", "-5"], "--duration: expected seconds in (0, 86400], got -5.0"),
    (["--duration", "nan"], "--duration: expected seconds in (0, 86400], got nan"),
    (["--duration", "1e9"], "--duration: expected seconds in (0, 86400], got 1000000000.0"),
    (["--duration", "5", "--sample-period", "0"], "--sample-period: expected seconds in [0.02, 10], got 0.0"),
    (["--duration", "5", "--domain-id", "233"], "--domain-id: expected an integer 0..232, got 233"),
])
def test_learn_rejects_bad_flags_before_joining_the_domain(cli, argv: list[str], message: str) -> None:
    result = cli("policy", "learn", *argv)

    assert result.code == 2
    assert result.err_lines == [f"cobot-security policy: error: {message}"]


def test_learn_rejects_a_bad_merge_file_and_an_existing_output(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\ndomain_ids: [1]\nenclaves: {/a: {nod: b}}\n")
    existing = tmp_path / "out.yaml"
    existing.write_text("keep me")

    merge = cli("policy", "learn", "--duration", "1", "--merge", bad)
    output = cli("policy", "learn", "--duration", "1", "--output", existing)

    assert merge.code == 2 and len(merge.err_lines) == 1 and f"{bad}:4:" in merge.err
    assert output.code == 2 and "--output: expected a path that does not exist yet" in output.err
    assert existing.read_text() == "keep me"


def test_learn_rejects_a_bad_ros_domain_id(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROS_DOMAIN_ID", "4x")

    result = cli("policy", "learn", "--duration", "1")

    assert result.code == 2
    assert result.err_lines == ["cobot-security policy: error: ROS_DOMAIN_ID: expected an integer 0..232, got '4x'"]


def test_lint_observed_lists_unused_grants(cli, tmp_path: Path) -> None:
    observed = tmp_path / "learned.yaml"
    observed.write_text("version: 1\nname: l\ndomain_ids: [42]\nenclaves:\n  /cell/arm_driver:\n"
                        "    node: arm_driver\n    namespace: /cell\n    topics: {publish: [joint_states]}\n")

    result = cli("policy", "lint", "--observed", observed, "--json")
    strict = cli("policy", "lint", "--observed", observed, "--strict")

    findings = json.loads(result.out)
    unused = [f for f in findings if f["message"].startswith("unused grant")]
    assert result.code == 0 and strict.code == 1
    assert len(unused) == 14  # the arm's 4 grants, 10 nodes never seen (launch_listener too)
    assert unused[0]["message"] == f"unused grant: '~/status' of node /cell/arm_driver was never observed in {observed}"
