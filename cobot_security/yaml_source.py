"""Line-numbered, strict YAML reading shared by every versioned YAML file of the package.

The YAML is *composed* (SafeLoader node graph), never loaded into plain dicts, so that every value
keeps its line number and duplicate keys can be caught: PyYAML's ``load`` silently keeps the last
duplicate, which would let a second entry quietly replace the first.  Every failure is an
:class:`~cobot_security.errors.InputError` (or the subclass the caller names) reading
``<file>:<line>: <dotted.field>: expected X, got Y``.

Hostile documents are bounded before any Python object is built from them
(:mod:`cobot_security.yaml_compose`: size and nesting depth), and durations are bounded too
(:mod:`cobot_security.duration`; :data:`MAX_DURATION` unless the caller is stricter), so
``999999999999999999d`` is an error rather than an OverflowError.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TypeVar

from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cobot_security.duration import MAX_DURATION, duration_seconds, format_duration, parse_duration
from cobot_security.errors import InputError
from cobot_security.yaml_compose import MAX_YAML_BYTES, MAX_YAML_DEPTH, compose_yaml, read_yaml_file

__all__ = [
    "MAX_DURATION",
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "YamlContext",
    "YamlDocument",
    "compose_yaml",
    "describe_node",
    "format_duration",
    "line_of",
    "parse_duration",
    "read_boolean",
    "read_choice",
    "read_date",
    "read_document",
    "read_duration",
    "read_integer",
    "read_mapping",
    "read_scalar",
    "read_sequence",
    "read_string",
    "read_unique_items",
    "read_version",
    "read_yaml_file",
    "require_key",
]

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlContext:
    """Where we are in a document: the source name, the dotted field path and the error class."""

    source: str
    field: str = ""
    error_type: type[InputError] = InputError

    def child(self, key: str) -> YamlContext:
        """The context of mapping key ``key`` below this one."""
        return YamlContext(self.source, f"{self.field}.{key}" if self.field else key, self.error_type)

    def item(self, index: int) -> YamlContext:
        """The context of list item ``index`` below this one."""
        return YamlContext(self.source, f"{self.field}[{index}]", self.error_type)

    def error(self, node: Node | None, expected: str, got: str | None = None) -> InputError:
        """An error of ``error_type`` at ``node``'s line naming this field."""
        return self.error_type(self.source, self.field or None, expected, got, line_of(node))


def line_of(node: Node | None) -> int | None:
    """1-based line where ``node`` starts, or None without a node."""
    return node.start_mark.line + 1 if node is not None else None


def describe_node(node: Node) -> str:
    """A short description of a YAML node for the 'got ...' part of a message."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    kind = {"str": "string", "int": "integer", "bool": "boolean", "null": "null", "float": "float"}.get(tag, tag)
    return f"{kind} {node.value!r}" if kind != "null" else "nothing (null)"


def read_scalar(node: Node, ctx: YamlContext, expected: str) -> object:
    """The Python value of a scalar node (SafeLoader rules).

    :raises InputError: when ``node`` is not a scalar or cannot be constructed.
    """
    if not isinstance(node, ScalarNode):
        raise ctx.error(node, expected, describe_node(node))
    try:
        return SafeConstructor().construct_object(node, deep=True)
    except ConstructorError as exc:
        raise ctx.error(node, expected, f"{describe_node(node)} ({exc.problem})") from None
    except (ValueError, TypeError) as exc:
        raise ctx.error(node, expected, f"{describe_node(node)} ({exc})") from None


def read_string(node: Node, ctx: YamlContext, expected: str = "a string") -> str:
    """A non-empty string scalar.

    :raises InputError: for anything else (numbers, booleans, dates and null included).
    """
    value = read_scalar(node, ctx, expected)
    if not isinstance(value, str) or not value:
        raise ctx.error(node, expected, describe_node(node))
    return value


def read_boolean(node: Node, ctx: YamlContext) -> bool:
    """A boolean scalar.

    :raises InputError: for anything else.
    """
    value = read_scalar(node, ctx, "true or false")
    if not isinstance(value, bool):
        raise ctx.error(node, "true or false", describe_node(node))
    return value


def read_integer(node: Node, ctx: YamlContext, expected: str) -> int:
    """An integer scalar (booleans are not integers here).

    :raises InputError: for anything else.
    """
    value = read_scalar(node, ctx, expected)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(node, expected, describe_node(node))
    return value


def read_date(node: Node, ctx: YamlContext) -> _dt.date:
    """An ISO 8601 calendar date (``2026-11-29``), unquoted or quoted; date-times are refused.

    :raises InputError: for anything else.
    """
    expected = "an ISO 8601 date YYYY-MM-DD"
    value = read_scalar(node, ctx, expected)
    if isinstance(value, _dt.datetime):
        raise ctx.error(node, expected, describe_node(node))
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ctx.error(node, expected, f"{describe_node(node)} ({exc})") from None
    raise ctx.error(node, expected, describe_node(node))


def read_sequence(node: Node, ctx: YamlContext, expected: str) -> list[Node]:
    """The item nodes of a sequence node.

    :raises InputError: when ``node`` is not a list.
    """
    if not isinstance(node, SequenceNode):
        raise ctx.error(node, expected, describe_node(node))
    return list(node.value)


def read_mapping(
    node: Node, ctx: YamlContext, allowed: tuple[str, ...], what: str = "a mapping", key_kind: str = "key"
) -> dict[str, tuple[Node, Node]]:
    """Key → (key node, value node) of a mapping, refusing duplicate, non-string and unknown keys.

    An empty ``allowed`` accepts any key (used where keys are data, e.g. enclave paths).

    :raises InputError: naming the offending key and, for duplicates, the first definition's line.
    """
    if not isinstance(node, MappingNode):
        raise ctx.error(node, what, describe_node(node))
    seen: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            raise ctx.child("<<").error(key_node, "keys written out (YAML merge keys '<<' are not supported)", "'<<'")
        key = read_string(key_node, ctx, "string keys")
        if key in seen:
            first = line_of(seen[key][0])
            raise ctx.child(key).error(
                key_node, f"each {key_kind} once (first defined at line {first})",
                f"a duplicate at line {line_of(key_node)}",
            )
        if allowed and key not in allowed:
            raise ctx.child(key).error(key_node, "one of the keys " + ", ".join(allowed), f"unknown key {key!r}")
        seen[key] = (key_node, value_node)
    return seen


def require_key(keys: dict[str, tuple[Node, Node]], name: str, node: Node, ctx: YamlContext) -> tuple[Node, Node]:
    """The (key node, value node) of required key ``name`` of the mapping ``node``.

    :raises InputError: at the mapping's line when the key is absent.
    """
    if name not in keys:
        raise ctx.child(name).error(node, f"a required key '{name}'", "nothing")
    return keys[name]


def read_version(keys: dict[str, tuple[Node, Node]], root: Node, ctx: YamlContext, supported: int) -> int:
    """The document's ``version:``, which must equal ``supported``.

    :raises InputError: when it is missing, not an integer or another version.
    """
    version_node = require_key(keys, "version", root, ctx)[1]
    version = read_integer(version_node, ctx.child("version"), f"version {supported}")
    if version != supported:
        raise ctx.child("version").error(version_node, f"version {supported}", str(version))
    return version


E = TypeVar("E", bound=Enum)


def read_choice(node: Node, ctx: YamlContext, choices: type[E], expected: str | None = None) -> E:
    """A string that must be one of the values of the Enum ``choices`` (the one place enums are read).

    :raises InputError: (as the context's error type) naming the allowed values.
    """
    wanted = expected or "one of " + ", ".join(str(c.value) for c in choices)
    text = read_string(node, ctx, wanted)
    try:
        return choices(text)
    except ValueError:
        raise ctx.error(node, wanted, repr(text)) from None


class _Identified(Protocol):
    """An item parsed from a list entry: an ``id`` and the line it was defined on."""

    @property
    def id(self) -> str: ...

    @property
    def line(self) -> int | None: ...


T = TypeVar("T", bound=_Identified)


def read_unique_items(node: Node, ctx: YamlContext, parse: Callable[[Node, YamlContext], T], what: str,
                      *, non_empty: bool = False) -> list[T]:
    """Parse every entry of a list with ``parse``, refusing an ``id`` that was already defined.

    ``what`` names the entries (``control``, ``playbook``); ``non_empty`` fails closed on ``[]``.

    :raises InputError: (as the context's error type) on a bad entry, a duplicate id or an empty list.
    """
    expected = f"a non-empty list of {what}s" if non_empty else f"a list of {what}s"
    entries = read_sequence(node, ctx, expected)
    if non_empty and not entries:
        raise ctx.error(node, expected, "an empty list")
    items: dict[str, T] = {}
    for index, entry in enumerate(entries):
        item = parse(entry, ctx.item(index))
        previous = items.get(item.id)
        if previous is not None:
            raise ctx.item(index).child("id").error(
                entry, f"each {what} id once (first defined at line {previous.line})", repr(item.id))
        items[item.id] = item
    return list(items.values())


@dataclass(frozen=True)
class YamlDocument:
    """A versioned top-level mapping: its root node, its keys, the context errors start from."""

    root: Node
    keys: dict[str, tuple[Node, Node]]
    ctx: YamlContext
    version: int


def read_document(
    text: str,
    source: str,
    allowed: tuple[str, ...],
    expected: str,
    supported_version: int,
    error_type: type[InputError] = InputError,
) -> YamlDocument:
    """Compose ``text`` and check the prologue every data file shares: a mapping with only
    ``allowed`` keys and a supported ``version``.

    :raises InputError: (as ``error_type``) on syntax errors, an empty document, unknown keys or
        an unsupported version.
    """
    root = compose_yaml(text, source, error_type)
    if root is None:
        raise error_type(source, None, expected, "an empty document", 1)
    ctx = YamlContext(source, "", error_type)
    keys = read_mapping(root, ctx, allowed, expected)
    version = read_version(keys, root, ctx, supported_version)
    return YamlDocument(root, keys, ctx, version)


def read_duration(node: Node, ctx: YamlContext, minimum: _dt.timedelta | None = None,
                  maximum: _dt.timedelta = MAX_DURATION) -> _dt.timedelta:
    """A duration scalar such as ``90d`` (see :func:`parse_duration`) within ``minimum..maximum``.

    :raises InputError: for anything else, naming the bounds when the value is out of them.
    """
    expected = "a duration like 90d, 2160h, 45m or 30s (positive integer + unit s/m/h/d)"
    value = read_scalar(node, ctx, expected)
    if not isinstance(value, str):
        raise ctx.error(node, expected, describe_node(node))
    try:
        seconds = duration_seconds(value)
    except ValueError:
        raise ctx.error(node, expected, describe_node(node)) from None
    low = minimum.total_seconds() if minimum is not None else 1
    if not low <= seconds <= maximum.total_seconds():
        bounds = (f"between {format_duration(minimum)} and {format_duration(maximum)}" if minimum is not None
                  else f"of at most {format_duration(maximum)}")
        raise ctx.error(node, f"a duration {bounds}", repr(value))
    return _dt.timedelta(seconds=seconds)
