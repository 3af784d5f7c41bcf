"""policy.export: dump → load gives back an equal model; the shorthand is used for one-node enclaves."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from cobot_security.policy.export import dump_policy_yaml, format_duration
from cobot_security.policy.load import load_policy, load_policy_text
from cobot_security.policy.sros2_import import import_sros2_policy


@pytest.mark.parametrize("name", ["minimal.yaml", "weak.yaml"])
def test_round_trip_assets(policy_assets: Path, name: str) -> None:
    policy = load_policy(policy_assets / name)
    assert load_policy_text(dump_policy_yaml(policy), "dumped.yaml") == policy


def test_round_trip_example(example_policy_path: Path) -> None:
    policy = load_policy(example_policy_path)
    text = dump_policy_yaml(policy, header="generated\nby a test")
    assert text.startswith("# generated\n# by a test\nversion: 1\n")
    again = load_policy_text(text, "dumped.yaml")
    assert again == policy
    document = yaml.safe_load(text)
    assert "node" in document["enclaves"]["/cell/arm_driver"]
    assert len(document["enclaves"]["/cell/vision"]["nodes"]) == 2


@pytest.mark.parametrize("name", ["sample", "single_context"])
def test_round_trip_sros2_import(oracles: Path, name: str) -> None:
    policy = import_sros2_policy(oracles / "test_policies" / f"{name}.policy.xml", builtins=False)
    assert load_policy_text(dump_policy_yaml(policy), "dumped.yaml") == policy


def test_round_trip_awkward_names() -> None:
    text = """\
version: 1
name: 'yes'
domain_ids: [0]
certificates: {enclave: {duration: 36h, renew_before: 90m}, crl: {next_update: 3601s}}
enclaves:
  /a:
    node: a
    topics: {publish: ['*', 'null', 'true', '~/x', '1a'], subscribe: ['/*']}
"""
    policy = load_policy_text(text, "inline.yaml")
    assert load_policy_text(dump_policy_yaml(policy), "dumped.yaml") == policy


@pytest.mark.parametrize(
    ("value", "text"),
    [(dt.timedelta(days=90), "90d"), (dt.timedelta(hours=36), "36h"), (dt.timedelta(minutes=90), "90m"),
     (dt.timedelta(seconds=61), "61s")],
)
def test_format_duration(value: dt.timedelta, text: str) -> None:
    assert format_duration(value) == text


@pytest.mark.parametrize("value", [dt.timedelta(0), dt.timedelta(seconds=-1), dt.timedelta(milliseconds=1500)])
def test_format_duration_rejects(value: dt.timedelta) -> None:
    with pytest.raises(ValueError, match="positive whole number of seconds"):
        format_duration(value)
