"""policy.lint: findings for an unwise policy, none for the shipped example."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cobot_security.policy.lint import ERROR, WARNING, LintFinding, lint_policy
from cobot_security.policy.load import load_policy, load_policy_text


def test_example_is_lint_clean(example_policy_path: Path) -> None:
    findings = lint_policy(load_policy(example_policy_path))
    assert findings == []


def test_weak_policy_findings(policy_assets: Path) -> None:
    findings = lint_policy(load_policy(policy_assets / "weak.yaml"))
    by_field = {(f.enclave, f.field): f for f in findings}
    assert by_field[("", "governance.allow_unauthenticated_participants")].level == ERROR
    assert by_field[("", "governance.enable_read_access_control")].level == ERROR
    assert ("", "governance.enable_write_access_control") not in by_field
    assert by_field[("", "governance.protection.rtps")].level == WARNING
    assert "SIGN" in by_field[("", "governance.protection.rtps")].message
    assert by_field[("", "governance.protection.data")].level == ERROR
    assert ("", "governance.protection.discovery") not in by_field
    assert by_field[("", "certificates.enclave.duration")].level == WARNING
    assert "800 days" in by_field[("", "certificates.enclave.duration")].message
    builtins = by_field[("/cell/debug", "builtins")]
    assert builtins.level == WARNING and builtins.line == 14


def test_each_wildcard_is_reported_with_what_it_grants(policy_assets: Path) -> None:
    findings = [f for f in lint_policy(load_policy(policy_assets / "weak.yaml")) if "wildcard" in f.message]
    assert [(f.enclave, f.field, f.level) for f in findings] == [
        ("/cell/debug", "topics.publish", WARNING),
        ("/cell/debug", "topics.subscribe", WARNING),
    ]
    assert "publishing on every topic matching '/cell/*'" in findings[0].message
    assert "subscribing to every topic matching '/cell/*'" in findings[1].message
    assert findings[0].line == 15


def test_dangling_names(policy_assets: Path) -> None:
    findings = lint_policy(load_policy(policy_assets / "weak.yaml"))
    messages = [f.message for f in findings if f.level == WARNING]
    assert any("topic /other/nobody_publishes_this is subscribed but no enclave publishes it" in m for m in messages)
    assert any("service /cell/missing_service is called but no enclave serves it" in m for m in messages)
    assert any("action /cell/missing_action is called but no enclave serves it" in m for m in messages)
    # '/cell/*' is published and '*' (-> /cell/*) subscribed: wildcards satisfy each other, no dangling topic.
    assert not any("topic /cell/*" in m for m in messages)


def test_publish_without_subscriber_and_nodes_field() -> None:
    text = """\
version: 1
name: c
domain_ids: [0]
enclaves:
  /cell/vision:
    nodes:
      - {name: camera, namespace: /cell, topics: {publish: [image_raw]}}
      - {name: detector, namespace: /cell, topics: {subscribe: [image_raw], publish: [detections]}}
"""
    findings = lint_policy(load_policy_text(text, "inline.yaml"))
    assert findings == [
        LintFinding(
            WARNING,
            "/cell/vision",
            "nodes[1].topics.publish",
            "topic /cell/detections is published but no enclave subscribes to it (node /cell/detector)",
            8,
        )
    ]


def test_findings_are_frozen() -> None:
    finding = LintFinding(WARNING, "/e", "builtins", "m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.level = ERROR  # type: ignore[misc]


def _many_names(publish: list[str], subscribe: list[str]) -> str:
    def block(names: list[str]) -> str:
        return "".join(f"      - '{name}'\n" for name in names)

    return ("version: 1\nname: c\ndomain_ids: [0]\nenclaves:\n  /a:\n    node: a\n    topics:\n"
            f"      publish:\n{block(publish)}      subscribe:\n{block(subscribe)}")


def test_dangling_check_of_many_wildcards_is_bounded() -> None:
    """A hostile policy of wildcards must not make lint quadratic (issue 16): beyond the budget the
    dangling-name check says it was skipped instead of running for minutes."""
    n = 1001  # 1001 x 1001 comparisons: just over the 1 000 000 budget
    policy = load_policy_text(_many_names([f"p{i}*" for i in range(n)], [f"s{i}*" for i in range(n)]), "w.yaml")
    skipped = [f for f in lint_policy(policy) if f.field == "enclaves"]
    assert [f.level for f in skipped] == [WARNING, WARNING]
    assert "1002001 comparisons, more than 1000000" in skipped[0].message


def test_many_concrete_names_are_matched_through_a_set() -> None:
    n = 20_000
    policy = load_policy_text(_many_names([f"t{i}" for i in range(n)], [f"t{i}" for i in range(1, n + 1)]), "w.yaml")
    dangling = [f.message.split(" (")[0] for f in lint_policy(policy)]
    assert dangling == [f"topic /t{n} is subscribed but no enclave publishes it",
                        "topic /t0 is published but no enclave subscribes to it"]
