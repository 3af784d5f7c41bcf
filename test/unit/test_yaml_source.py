"""Bounds every YAML input shares (cobot_security.yaml_source): size, nesting depth, durations.

Issue 16: a 2 KB file of 1000 ``[`` ended in a RecursionError traceback, and ``999999999999999999d``
in an OverflowError; both must be one-line InputErrors naming the file and line.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from ci_required import missing
from yaml.nodes import ScalarNode

from cobot_security import yaml_compose
from cobot_security.errors import InputError, PolicyError
from cobot_security.yaml_source import (
    MAX_DURATION,
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    YamlContext,
    compose_yaml,
    format_duration,
    parse_duration,
    read_duration,
    read_yaml_file,
)


@pytest.fixture(params=["libyaml", "pure-python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with libyaml's composer (when PyYAML has it) and with the pure-Python one alone."""
    if request.param == "pure-python":
        monkeypatch.setattr(yaml_compose, "_FAST_LOADER", None)
    elif yaml_compose._FAST_LOADER is None:
        missing("PyYAML was built without libyaml", what="the libyaml composer")
    return str(request.param)


def _nested_lists(depth: int) -> str:
    return "[" * depth + "]" * depth


def _nested_mappings(depth: int) -> str:
    return "".join(f"{'  ' * level}k{level}:\n" for level in range(depth)) + "  " * depth + "x\n"


@pytest.mark.parametrize("text", [
    "[" * 1000,                          # the 2 KB file (not even closed)
    _nested_lists(MAX_YAML_DEPTH + 1),
    _nested_mappings(MAX_YAML_DEPTH + 1),
    "{a: " * 5000 + "1" + "}" * 5000,
    "- " * 3000 + "x\n",                 # block sequences nested on one line
    _nested_lists(999),                  # composes in libyaml (its own limit is 1000), refused after
    "a: &x 1\nb: " + "[" * 31 + "*x" + "]" * 31 + "\n",  # an alias at depth 33
], ids=["issue", "lists", "mappings", "flow-mappings", "block-sequences", "999", "alias"])
def test_deep_nesting_is_a_one_line_error(text: str, loader: str) -> None:
    with pytest.raises(PolicyError, match=rf"^deep\.yaml:[0-9]+: expected lists and mappings nested at most "
                                          rf"{MAX_YAML_DEPTH} deep, got deeper nesting$") as caught:
        compose_yaml(text, "deep.yaml", PolicyError)
    assert caught.value.exit_code == 2


def test_nesting_up_to_the_limit_composes(loader: str) -> None:
    assert compose_yaml(_nested_lists(MAX_YAML_DEPTH), "ok.yaml") is not None
    assert compose_yaml(_nested_mappings(MAX_YAML_DEPTH - 1), "ok.yaml") is not None
    assert compose_yaml("a: &x [1, *x]\nb: [*x, *x]\n", "ok.yaml") is not None  # a cycle is not depth


def test_depth_error_names_the_line_where_it_went_too_deep(loader: str) -> None:
    text = "a: 1\nb: 2\nc: " + _nested_lists(MAX_YAML_DEPTH + 5) + "\n"
    with pytest.raises(InputError) as caught:
        compose_yaml(text, "deep.yaml")
    assert caught.value.line == 3


def test_document_size_is_bounded(tmp_path: Path) -> None:
    big = "# " + "x" * MAX_YAML_BYTES + "\n"
    with pytest.raises(InputError, match=f"expected a YAML document of at most {MAX_YAML_BYTES} bytes"):
        compose_yaml(big, "big.yaml")
    path = tmp_path / "big.yaml"
    path.write_text(big)
    with pytest.raises(PolicyError, match=f"big.yaml: expected a policy file of at most {MAX_YAML_BYTES} bytes"):
        read_yaml_file(path, "policy file", PolicyError)


def test_an_endless_file_is_refused_without_reading_it_all() -> None:
    started = time.monotonic()
    with pytest.raises(InputError, match="/dev/zero: expected a policy file of at most"):
        read_yaml_file("/dev/zero", "policy file")
    assert time.monotonic() - started < 5  # bounded read; a full read would never end


def _scalar(text: str) -> ScalarNode:
    node = compose_yaml(f"'{text}'", "d.yaml")
    assert isinstance(node, ScalarNode)
    return node


@pytest.mark.parametrize("text", ["999999999999999999d", "36500000d", "36501d", "876001h", "9" * 5000 + "s"])
def test_huge_durations_are_bounded_errors_not_overflows(text: str) -> None:
    with pytest.raises(InputError, match=r"d\.yaml:1: x: expected a duration of at most 36500d, got '") as caught:
        read_duration(_scalar(text), YamlContext("d.yaml", "x"))
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="longer than 36500d"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["90d\n", "90d ", "1.5d", "0d", "-3d", "90", "1w"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="expected a duration like 90d"):
        read_duration(_scalar(text), YamlContext("d.yaml", "x"))
    with pytest.raises(ValueError):
        parse_duration(text)


def test_duration_bounds_are_inclusive() -> None:
    ctx = YamlContext("d.yaml", "x")
    hour, day = dt.timedelta(hours=1), dt.timedelta(days=1)
    assert read_duration(_scalar("1h"), ctx, hour, day) == hour
    assert read_duration(_scalar("24h"), ctx, hour, day) == day
    for text in ("59m", "3599s", "86401s", "2d"):
        with pytest.raises(InputError, match=f"expected a duration between 1h and 1d, got '{text}'"):
            read_duration(_scalar(text), ctx, hour, day)
    assert parse_duration(format_duration(MAX_DURATION)) == MAX_DURATION
