"""compose_yaml through libyaml reads every shipped and test YAML file as the pure-Python loader does (issue 11).

Same node graph (kinds, tags, values, flow styles, start and end marks: policy merge edits text at
them) for the good files, the same one-line
``file:line: field: expected X, got Y`` error for the bad ones, so that the C loader changes
nothing a user sees but the time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cobot_security import yaml_compose
from cobot_security.errors import InputError
from cobot_security.policy.load import load_policy

REPO = Path(__file__).resolve().parents[3]
FILES = sorted([*REPO.glob("policies/*.yaml"), *REPO.glob("test/assets/**/*.yaml")])
BAD_SYNTAX = [
    "version: 1\nname: [unclosed\n",
    "a: 1\n b: 2\n",
    "key: value: other\n",
    "- a\nb: 1\n",
    "a: &x 1\nb: *y\n",
    "a: 'unterminated\n",
    "\t- tab\n",
    "a: 1\n---\nb: 2\n",
]


def _shape(node: Node | None) -> object:
    """A comparable picture of a node graph, marks included."""
    if node is None:
        return None
    where = (node.start_mark.line, node.start_mark.column, node.end_mark.line, node.end_mark.column)
    if isinstance(node, ScalarNode):
        return ("scalar", node.tag, node.value, node.style or None, where)  # libyaml says "" for plain
    if isinstance(node, SequenceNode):
        return ("sequence", node.tag, node.flow_style, where, [_shape(item) for item in node.value])
    assert isinstance(node, MappingNode)
    return ("mapping", node.tag, node.flow_style, where, [(_shape(k), _shape(v)) for k, v in node.value])


def _outcome(text: str, monkeypatch: pytest.MonkeyPatch, loader: type | None) -> object:
    monkeypatch.setattr(yaml_compose, "_FAST_LOADER", loader)
    try:
        return _shape(yaml_compose.compose_yaml(text, "file.yaml"))
    except InputError as exc:
        return str(exc)


def test_libyaml_is_used_here() -> None:
    assert yaml_compose._FAST_LOADER is yaml.CSafeLoader  # PyYAML built with libyaml (the wheels are)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(REPO)) for p in FILES])
def test_every_file_composes_the_same_with_libyaml(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = path.read_text(encoding="utf-8")
    assert _outcome(text, monkeypatch, yaml.CSafeLoader) == _outcome(text, monkeypatch, None)


@pytest.mark.parametrize("text", BAD_SYNTAX)
def test_syntax_errors_read_the_same_with_libyaml(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _outcome(text, monkeypatch, yaml.CSafeLoader), _outcome(text, monkeypatch, None)
    assert isinstance(slow, str) and slow.startswith("file.yaml:") and "expected valid YAML" in slow
    assert fast == slow


@pytest.mark.parametrize("path", sorted(REPO.glob("test/assets/policies/bad_*.yaml")), ids=lambda p: p.name)
def test_bad_policies_give_the_same_message_with_libyaml(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    messages = []
    for loader in (yaml.CSafeLoader, None):
        monkeypatch.setattr(yaml_compose, "_FAST_LOADER", loader)
        with pytest.raises(InputError) as info:
            load_policy(path)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith(f"{path}:")
