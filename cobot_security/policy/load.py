"""Workcell policy YAML (``version: 1``) → :class:`WorkcellPolicy`, rejecting anything not in the schema.

The YAML is *composed* (SafeLoader node graph), never loaded into plain dicts, so that every value
keeps its line number and duplicate keys can be caught: PyYAML's ``load`` silently keeps the last
duplicate, which would let a second ``publish:`` quietly replace the first.  Every failure is a
:class:`PolicyError` reading ``<file>:<line>: <dotted.field>: expected X, got Y``.  The schema is
documented key by key in ``docs/policy.md``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cobot_security.errors import InvalidNameError, PolicyError
from cobot_security.names import (
    NameContext,
    validate_enclave_path,
    validate_namespace,
    validate_node_name,
    validate_ros_name,
)
from cobot_security.policy.export import format_duration
from cobot_security.policy.model import (
    Enclave,
    GovernanceOptions,
    Lifetimes,
    NodeGrants,
    Protection,
    WorkcellPolicy,
)

#: The only schema version this loader understands.
SCHEMA_VERSION = 1
#: Highest DDS domain id ROS 2 accepts (rmw port arithmetic limits it to 0..232).
MAX_DOMAIN_ID = 232

_TOP_KEYS = ("version", "name", "domain_ids", "governance", "certificates", "enclaves")
_GOVERNANCE_KEYS = (
    "allow_unauthenticated_participants",
    "enable_join_access_control",
    "enable_read_access_control",
    "enable_write_access_control",
    "protection",
)
_PROTECTION_KEYS = ("rtps", "discovery", "liveliness", "metadata", "data")
_CERT_KEYS = ("ca", "enclave", "crl")
_GRANT_KEYS = ("topics", "services", "actions")
_SHORTHAND_KEYS = ("node", "namespace", *_GRANT_KEYS, "builtins")
_NODES_FORM_KEYS = ("nodes", "builtins")
_NODE_ENTRY_KEYS = ("name", "namespace", *_GRANT_KEYS)
#: grant section → (allowed sub-keys, NodeGrants field for each sub-key)
_GRANT_FIELDS: dict[str, dict[str, str]] = {
    "topics": {"publish": "publish", "subscribe": "subscribe"},
    "services": {"serve": "services_serve", "call": "services_call"},
    "actions": {"serve": "actions_serve", "call": "actions_call"},
}
_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class _Ctx:
    """Where we are in the document: the source name and the dotted field path."""

    source: str
    field: str

    def child(self, key: str) -> _Ctx:
        return _Ctx(self.source, f"{self.field}.{key}" if self.field else key)

    def item(self, index: int) -> _Ctx:
        return _Ctx(self.source, f"{self.field}[{index}]")

    def error(self, node: Node | None, expected: str, got: str | None = None) -> PolicyError:
        return PolicyError(self.source, self.field or None, expected, got, _line(node))

    def names(self, node: Node) -> NameContext:
        return NameContext(file=self.source, field=self.field or None, line=_line(node))


def _line(node: Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _describe(node: Node) -> str:
    """A short description of a YAML node for the 'got ...' part of a message."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    kind = {"str": "string", "int": "integer", "bool": "boolean", "null": "null", "float": "float"}.get(tag, tag)
    return f"{kind} {node.value!r}" if kind != "null" else "nothing (null)"


def _scalar(node: Node, ctx: _Ctx, expected: str) -> object:
    """The Python value of a scalar node (SafeLoader rules), or a PolicyError."""
    if not isinstance(node, ScalarNode):
        raise ctx.error(node, expected, _describe(node))
    try:
        return SafeConstructor().construct_object(node, deep=True)
    except ConstructorError as exc:
        raise ctx.error(node, expected, f"{_describe(node)} ({exc.problem})") from None
    except (ValueError, TypeError) as exc:
        raise ctx.error(node, expected, f"{_describe(node)} ({exc})") from None


def _string(node: Node, ctx: _Ctx, expected: str = "a string") -> str:
    value = _scalar(node, ctx, expected)
    if not isinstance(value, str) or not value:
        raise ctx.error(node, expected, _describe(node))
    return value


def _bool(node: Node, ctx: _Ctx) -> bool:
    value = _scalar(node, ctx, "true or false")
    if not isinstance(value, bool):
        raise ctx.error(node, "true or false", _describe(node))
    return value


def _int(node: Node, ctx: _Ctx, expected: str) -> int:
    value = _scalar(node, ctx, expected)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(node, expected, _describe(node))
    return value


def _sequence(node: Node, ctx: _Ctx, expected: str) -> list[Node]:
    if not isinstance(node, SequenceNode):
        raise ctx.error(node, expected, _describe(node))
    return list(node.value)


def _mapping(
    node: Node, ctx: _Ctx, allowed: tuple[str, ...], what: str = "a mapping", key_kind: str = "key"
) -> dict[str, tuple[Node, Node]]:
    """Key → (key node, value node) of a mapping, refusing duplicate, non-string and unknown keys.

    An empty ``allowed`` accepts any key (used where keys are data, e.g. enclave paths).
    """
    if not isinstance(node, MappingNode):
        raise ctx.error(node, what, _describe(node))
    seen: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise ctx.child("<<").error(key_node, "keys written out (YAML merge keys '<<' are not supported)", "'<<'")
        key = _string(key_node, ctx, "string keys")
        if key in seen:
            first = _line(seen[key][0])
            raise ctx.child(key).error(
                key_node, f"each {key_kind} once (first defined at line {first})", f"a duplicate at line {_line(key_node)}"
            )
        if allowed and key not in allowed:
            raise ctx.child(key).error(key_node, "one of the keys " + ", ".join(allowed), f"unknown key {key!r}")
        seen[key] = (key_node, value_node)
    return seen


def _require(keys: dict[str, tuple[Node, Node]], name: str, node: Node, ctx: _Ctx) -> tuple[Node, Node]:
    if name not in keys:
        raise ctx.child(name).error(node, f"a required key '{name}'", "nothing")
    return keys[name]


def parse_duration(text: str) -> _dt.timedelta:
    """``"90d"`` → 90 days; units s, m, h, d; the number must be a positive integer.

    :raises ValueError: when ``text`` is not of that form.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(text)
    return _dt.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _duration(node: Node, ctx: _Ctx) -> _dt.timedelta:
    expected = "a duration like 90d, 2160h, 45m or 30s (positive integer + unit s/m/h/d)"
    value = _scalar(node, ctx, expected)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            pass
    raise ctx.error(node, expected, _describe(node))


def _names(node: Node, ctx: _Ctx, validate: Callable[[str, NameContext], str]) -> tuple[str, ...]:
    result = []
    for index, item in enumerate(_sequence(node, ctx, "a list of names")):
        item_ctx = ctx.item(index)
        name = _string(item, item_ctx, "a name string")
        result.append(_checked(validate, name, item_ctx.names(item)))
    return tuple(result)


def _checked(validate: Callable[[str, NameContext], str], name: str, where: NameContext) -> str:
    """Run a names.validate_* function, turning its InvalidNameError into the loader's PolicyError."""
    try:
        return validate(name, where)
    except InvalidNameError as exc:
        raise PolicyError(exc.file, exc.field, exc.expected, exc.got, exc.line) from exc


def _ros_name(name: str, where: NameContext) -> str:
    return validate_ros_name(name, where, wildcards=True)


def _governance(node: Node, ctx: _Ctx) -> GovernanceOptions:
    keys = _mapping(node, ctx, _GOVERNANCE_KEYS)
    options: dict[str, object] = {}
    for name in _GOVERNANCE_KEYS[:-1]:
        if name in keys:
            options[name] = _bool(keys[name][1], ctx.child(name))
    if "protection" in keys:
        pctx = ctx.child("protection")
        kinds = _mapping(keys["protection"][1], pctx, _PROTECTION_KEYS)
        for kind, (_, value_node) in kinds.items():
            kctx = pctx.child(kind)
            text = _string(value_node, kctx, "NONE, SIGN or ENCRYPT")
            if text not in Protection.__members__:
                raise kctx.error(value_node, "NONE, SIGN or ENCRYPT", repr(text))
            options[f"{kind}_protection"] = Protection(text)
    return GovernanceOptions(**options)  # type: ignore[arg-type]


def _lifetimes(node: Node, ctx: _Ctx) -> Lifetimes:
    keys = _mapping(node, ctx, _CERT_KEYS)
    values: dict[str, _dt.timedelta] = {}
    layout = {
        "ca": {"duration": "ca_duration"},
        "enclave": {"duration": "enclave_duration", "renew_before": "renew_before"},
        "crl": {"next_update": "crl_next_update"},
    }
    for section, (_, section_node) in keys.items():
        sctx = ctx.child(section)
        fields = layout[section]
        for key, (_, value_node) in _mapping(section_node, sctx, tuple(fields)).items():
            values[fields[key]] = _duration(value_node, sctx.child(key))
    lifetimes = Lifetimes(**values)
    if lifetimes.renew_before >= lifetimes.enclave_duration:
        enclave_keys = keys.get("enclave")
        where = node
        if enclave_keys is not None:
            inner = _mapping(enclave_keys[1], ctx.child("enclave"), ())
            where = (inner.get("renew_before") or inner.get("duration") or enclave_keys)[0]
        raise ctx.child("enclave.renew_before").error(
            where,
            f"a renew_before shorter than the enclave duration {format_duration(lifetimes.enclave_duration)}",
            format_duration(lifetimes.renew_before),
        )
    return lifetimes


def _grant_sections(keys: dict[str, tuple[Node, Node]], ctx: _Ctx) -> dict[str, tuple[str, ...]]:
    grants: dict[str, tuple[str, ...]] = {}
    for section, fields in _GRANT_FIELDS.items():
        if section not in keys:
            continue
        sctx = ctx.child(section)
        for key, (_, value_node) in _mapping(keys[section][1], sctx, tuple(fields)).items():
            grants[fields[key]] = _names(value_node, sctx.child(key), _ros_name)
    return grants


def _node_grants(keys: dict[str, tuple[Node, Node]], name_key: str, ctx: _Ctx, line_node: Node) -> NodeGrants:
    name_node = keys[name_key][1]
    nctx = ctx.child(name_key)
    name = _checked(validate_node_name, _string(name_node, nctx, "a node name"), nctx.names(name_node))
    namespace = "/"
    if "namespace" in keys:
        ns_node = keys["namespace"][1]
        sctx = ctx.child("namespace")
        namespace = _checked(validate_namespace, _string(ns_node, sctx, "a namespace"), sctx.names(ns_node))
    return NodeGrants(name=name, namespace=namespace, line=_line(line_node), **_grant_sections(keys, ctx))


def _enclave(path_node: Node, node: Node, ctx: _Ctx) -> Enclave:
    path = _string(path_node, ctx, "an enclave path")
    _checked(validate_enclave_path, path, ctx.names(path_node))
    if not isinstance(node, MappingNode):
        raise ctx.error(node, "a mapping with 'node' (single node) or 'nodes' (several)", _describe(node))
    keys = _mapping(node, ctx, ())
    if "node" in keys and "nodes" in keys:
        raise ctx.child("nodes").error(
            keys["nodes"][0], "either 'node' (single-node shorthand) or 'nodes', not both", "both"
        )
    if "node" not in keys and "nodes" not in keys:
        raise ctx.error(path_node, "a 'node' key (single-node shorthand) or a 'nodes' list", "neither")
    if "node" in keys:
        keys = _mapping(node, ctx, _SHORTHAND_KEYS)
        nodes: tuple[NodeGrants, ...] = (_node_grants(keys, "node", ctx, keys["node"][0]),)
    else:
        stray = [k for k in keys if k not in _NODES_FORM_KEYS]
        if stray:
            key_node = keys[stray[0]][0]
            raise ctx.child(stray[0]).error(
                key_node,
                "only 'nodes' and 'builtins' beside a 'nodes' list (grant keys go into each nodes entry)",
                f"key {stray[0]!r}",
            )
        nctx = ctx.child("nodes")
        items = _sequence(keys["nodes"][1], nctx, "a non-empty list of nodes")
        if not items:
            raise nctx.error(keys["nodes"][1], "a non-empty list of nodes", "an empty list")
        built = []
        for index, item in enumerate(items):
            ictx = nctx.item(index)
            entry = _mapping(item, ictx, _NODE_ENTRY_KEYS, "a mapping with name, namespace, topics, services, actions")
            _require(entry, "name", item, ictx)
            built.append(_node_grants(entry, "name", ictx, item))
        nodes = tuple(built)
    builtins = _bool(keys["builtins"][1], ctx.child("builtins")) if "builtins" in keys else True
    return Enclave(path=path, nodes=nodes, builtins=builtins, line=_line(path_node))


def check_enclave_set(enclaves: Sequence[Enclave], source: str) -> None:
    """Enclave paths must be unique and must not nest (they are directories); a node FQN may
    belong to one enclave only.  Shared by the YAML loader and the sros2 importer.

    :raises PolicyError: naming the offending enclave or node and where the first one is.
    """
    seen: dict[str, Enclave] = {}
    for enclave in enclaves:
        if enclave.path in seen:
            raise PolicyError(
                source,
                f"enclaves.{enclave.path}",
                f"each enclave path once (first defined at line {seen[enclave.path].line})",
                f"a duplicate at line {enclave.line}",
                enclave.line,
            )
        seen[enclave.path] = enclave
    for enclave in enclaves:
        for other in enclaves:
            if enclave.path.startswith(other.path + "/"):
                raise PolicyError(
                    source,
                    f"enclaves.{enclave.path}",
                    f"enclave paths that do not nest (enclave directories cannot contain each other;"
                    f" {other.path} is defined at line {other.line})",
                    repr(enclave.path),
                    enclave.line,
                )
    owner: dict[str, tuple[Enclave, NodeGrants]] = {}
    for enclave in enclaves:
        for index, node in enumerate(enclave.nodes):
            if node.fqn in owner:
                first_enclave, first_node = owner[node.fqn]
                where = f".nodes[{index}]" if len(enclave.nodes) > 1 else ".node"
                raise PolicyError(
                    source,
                    f"enclaves.{enclave.path}{where}",
                    f"each node name once in the cell (already in enclave {first_enclave.path}"
                    f" at line {first_node.line})",
                    repr(node.fqn),
                    node.line,
                )
            owner[node.fqn] = (enclave, node)


def _domain_ids(node: Node, ctx: _Ctx) -> tuple[int, ...]:
    expected = f"a non-empty list of domain ids 0..{MAX_DOMAIN_ID}"
    items = _sequence(node, ctx, expected)
    if not items:
        raise ctx.error(node, expected, "an empty list")
    ids: list[int] = []
    for index, item in enumerate(items):
        ictx = ctx.item(index)
        value = _int(item, ictx, f"an integer domain id 0..{MAX_DOMAIN_ID}")
        if not 0 <= value <= MAX_DOMAIN_ID:
            raise ictx.error(item, f"a domain id 0..{MAX_DOMAIN_ID}", str(value))
        if value in ids:
            raise ictx.error(item, "each domain id once", f"{value} again")
        ids.append(value)
    return tuple(ids)


def _policy(root: Node | None, source: str) -> WorkcellPolicy:
    ctx = _Ctx(source, "")
    if root is None:
        raise PolicyError(source, None, "a policy mapping with version, name, domain_ids, enclaves", "an empty document", 1)
    keys = _mapping(root, ctx, _TOP_KEYS, "a policy mapping with version, name, domain_ids, enclaves")
    version_node = _require(keys, "version", root, ctx)[1]
    version = _int(version_node, ctx.child("version"), f"version {SCHEMA_VERSION}")
    if version != SCHEMA_VERSION:
        raise ctx.child("version").error(version_node, f"version {SCHEMA_VERSION}", str(version))
    name = _string(_require(keys, "name", root, ctx)[1], ctx.child("name"), "a non-empty cell name")
    domain_ids = _domain_ids(_require(keys, "domain_ids", root, ctx)[1], ctx.child("domain_ids"))
    governance = _governance(keys["governance"][1], ctx.child("governance")) if "governance" in keys else GovernanceOptions()
    lifetimes = _lifetimes(keys["certificates"][1], ctx.child("certificates")) if "certificates" in keys else Lifetimes()
    enclaves_node = _require(keys, "enclaves", root, ctx)[1]
    ectx = ctx.child("enclaves")
    enclave_keys = _mapping(
        enclaves_node, ectx, (), "a non-empty mapping of enclave path to enclave", key_kind="enclave path"
    )
    if not enclave_keys:
        raise ectx.error(enclaves_node, "a non-empty mapping of enclave path to enclave", _describe(enclaves_node))
    enclaves = [_enclave(key_node, value_node, ectx.child(path)) for path, (key_node, value_node) in enclave_keys.items()]
    check_enclave_set(enclaves, source)
    return WorkcellPolicy(
        version=version,
        name=name,
        domain_ids=domain_ids,
        governance=governance,
        lifetimes=lifetimes,
        enclaves=tuple(enclaves),
        source=source,
    )


def load_policy_text(text: str, source: str) -> WorkcellPolicy:
    """Parse and validate policy YAML ``text``; ``source`` names it in errors (usually the path).

    :raises PolicyError: on YAML syntax errors and on anything the version 1 schema does not allow.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        got = exc.problem or str(exc)
        if exc.context and exc.context_mark is not None:
            got += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise PolicyError(source, None, "valid YAML", got, line) from None
    except yaml.YAMLError as exc:
        raise PolicyError(source, None, "valid YAML", str(exc)) from None
    return _policy(root, source)


def load_policy(path: Path) -> WorkcellPolicy:
    """Read and validate the workcell policy at ``path`` (UTF-8 YAML, schema version 1).

    :raises PolicyError: when the file cannot be read or is not a valid policy.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(path, None, "a readable policy file", exc.strerror or type(exc).__name__) from None
    except UnicodeDecodeError as exc:
        raise PolicyError(path, None, "UTF-8 text", f"undecodable byte at offset {exc.start}") from None
    return load_policy_text(text, str(path))
