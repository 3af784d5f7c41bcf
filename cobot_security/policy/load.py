"""Workcell policy YAML (``version: 1``) → :class:`WorkcellPolicy`, rejecting anything not in the schema.

The YAML is *composed* by :mod:`cobot_security.yaml_source` (node graph, never plain dicts), so that
every value keeps its line number and duplicate keys are caught: PyYAML's ``load`` silently keeps the
last duplicate, which would let a second ``publish:`` quietly replace the first.  Every failure is a
:class:`PolicyError` reading ``<file>:<line>: <dotted.field>: expected X, got Y``.  The schema is
documented key by key in ``docs/policy.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from yaml.nodes import MappingNode, Node

from cobot_security.errors import InvalidNameError, PolicyError
from cobot_security.names import (
    NameContext,
    validate_enclave_path,
    validate_grant_name,
    validate_host_name,
    validate_namespace,
    validate_node_name,
)
from cobot_security.policy.lifetimes import read_lifetimes
from cobot_security.policy.model import (
    HOST_ROLES,
    Enclave,
    GovernanceOptions,
    Host,
    Lifetimes,
    Middleware,
    NodeGrants,
    Protection,
    WorkcellPolicy,
)
from cobot_security.yaml_source import (
    YamlContext,
    YamlDocument,
    describe_node,
    line_of,
    parse_duration,
    read_boolean,
    read_choice,
    read_document,
    read_integer,
    read_mapping,
    read_sequence,
    read_string,
    read_yaml_file,
    require_key,
)

__all__ = [
    "MAX_DOMAIN_ID",
    "SCHEMA_VERSION",
    "check_enclave_set",
    "load_policy",
    "load_policy_text",
    "parse_duration",
]

#: The only schema version this loader understands.
SCHEMA_VERSION = 1
#: Highest DDS domain id ROS 2 accepts (rmw port arithmetic limits it to 0..232).
MAX_DOMAIN_ID = 232

_TOP_KEYS = ("version", "name", "domain_ids", "middlewares", "governance", "certificates", "hosts", "enclaves")
_GOVERNANCE_KEYS = (
    "allow_unauthenticated_participants",
    "enable_join_access_control",
    "enable_read_access_control",
    "enable_write_access_control",
    "protection",
)
_PROTECTION_KEYS = ("rtps", "discovery", "liveliness", "metadata", "data")
_GRANT_KEYS = ("topics", "services", "actions")
_SHORTHAND_KEYS = ("node", "namespace", *_GRANT_KEYS, "builtins", "hosts")
_NODES_FORM_KEYS = ("nodes", "builtins", "hosts")
_HOST_KEYS = ("role", "description")
_NODE_ENTRY_KEYS = ("name", "namespace", *_GRANT_KEYS)
#: grant section → (allowed sub-keys, NodeGrants field for each sub-key)
_GRANT_FIELDS: dict[str, dict[str, str]] = {
    "topics": {"publish": "publish", "subscribe": "subscribe"},
    "services": {"serve": "services_serve", "call": "services_call"},
    "actions": {"serve": "actions_serve", "call": "actions_call"},
}
def _name_context(ctx: YamlContext, node: Node) -> NameContext:
    """The names.validate_* location for ``node`` under ``ctx``."""
    return NameContext(file=ctx.source, field=ctx.field or None, line=line_of(node))


def _names(node: Node, ctx: YamlContext, validate: Callable[[str, NameContext], str]) -> tuple[str, ...]:
    result = []
    for index, item in enumerate(read_sequence(node, ctx, "a list of names")):
        item_ctx = ctx.item(index)
        name = read_string(item, item_ctx, "a name string")
        result.append(_checked(validate, name, _name_context(item_ctx, item)))
    return tuple(result)


def _checked(validate: Callable[[str, NameContext], str], name: str, where: NameContext) -> str:
    """Run a names.validate_* function, turning its InvalidNameError into the loader's PolicyError."""
    try:
        return validate(name, where)
    except InvalidNameError as exc:
        raise PolicyError(exc.file, exc.field, exc.expected, exc.got, exc.line) from exc


def _governance(node: Node, ctx: YamlContext) -> GovernanceOptions:
    keys = read_mapping(node, ctx, _GOVERNANCE_KEYS)
    options: dict[str, object] = {}
    for name in _GOVERNANCE_KEYS[:-1]:
        if name in keys:
            options[name] = read_boolean(keys[name][1], ctx.child(name))
    if "protection" in keys:
        pctx = ctx.child("protection")
        kinds = read_mapping(keys["protection"][1], pctx, _PROTECTION_KEYS)
        for kind, (_, value_node) in kinds.items():
            options[f"{kind}_protection"] = read_choice(value_node, pctx.child(kind), Protection,
                                                        "NONE, SIGN or ENCRYPT")
    return GovernanceOptions(**options)  # type: ignore[arg-type]


def _grant_sections(keys: dict[str, tuple[Node, Node]], ctx: YamlContext, node: str,
                    namespace: str) -> dict[str, tuple[str, ...]]:
    grants: dict[str, tuple[str, ...]] = {}
    for section, fields in _GRANT_FIELDS.items():
        if section not in keys:
            continue
        sctx = ctx.child(section)

        def validate(name: str, where: NameContext, action: bool = section == "actions") -> str:
            return validate_grant_name(name, node, namespace, action, where)

        for key, (_, value_node) in read_mapping(keys[section][1], sctx, tuple(fields)).items():
            grants[fields[key]] = _names(value_node, sctx.child(key), validate)
    return grants


def _node_grants(keys: dict[str, tuple[Node, Node]], name_key: str, ctx: YamlContext, line_node: Node) -> NodeGrants:
    name_node = keys[name_key][1]
    nctx = ctx.child(name_key)
    name = _checked(validate_node_name, read_string(name_node, nctx, "a node name"), _name_context(nctx, name_node))
    namespace = "/"
    if "namespace" in keys:
        ns_node = keys["namespace"][1]
        sctx = ctx.child("namespace")
        namespace = _checked(validate_namespace, read_string(ns_node, sctx, "a namespace"),
                             _name_context(sctx, ns_node))
    return NodeGrants(name=name, namespace=namespace, line=line_of(line_node),
                      **_grant_sections(keys, ctx, name, namespace))


def _hosts(node: Node, ctx: YamlContext) -> tuple[Host, ...]:
    """The top-level ``hosts:`` mapping: host name → {role, description}; at most one authority."""
    hosts: list[Host] = []
    entries = read_mapping(node, ctx, (), "a mapping of host name to {role, description}", key_kind="host name")
    if not entries:
        raise ctx.error(node, "a non-empty mapping of host name to {role, description}", "an empty mapping")
    for name, (key_node, value_node) in entries.items():
        hctx = ctx.child(name)
        _checked(validate_host_name, name, _name_context(hctx, key_node))
        keys = read_mapping(value_node, hctx, _HOST_KEYS, "a mapping with role and description")
        role = read_string(keys["role"][1], hctx.child("role"), "authority or member") if "role" in keys else "member"
        if role not in HOST_ROLES:
            raise hctx.child("role").error(keys["role"][1], " or ".join(HOST_ROLES), repr(role))
        description = read_string(keys["description"][1], hctx.child("description"), "a description") \
            if "description" in keys else ""
        authority = next((h for h in hosts if h.role == "authority"), None)
        if role == "authority" and authority is not None:
            raise hctx.child("role").error(keys["role"][1], f"one authority host (already {authority.name} "
                                                            f"at line {authority.line})", "a second one")
        hosts.append(Host(name, role, description, line_of(key_node)))
    return tuple(hosts)


def _enclave_hosts(keys: dict[str, tuple[Node, Node]], path_node: Node, ctx: YamlContext,
                   known: tuple[Host, ...]) -> tuple[str, ...]:
    """An enclave's ``hosts:`` list: required when the policy names hosts, each one of them, once."""
    names = {host.name for host in known}
    expected = "a non-empty list of hosts named under the top-level hosts:"
    if "hosts" not in keys:
        if known:
            raise ctx.child("hosts").error(path_node, expected, "none (every enclave runs on some host)")
        return ()
    hctx = ctx.child("hosts")
    if not known:
        raise hctx.error(keys["hosts"][0], "no hosts: list without a top-level hosts: mapping naming them",
                         "a hosts: list")
    items = read_sequence(keys["hosts"][1], hctx, expected)
    if not items:
        raise hctx.error(keys["hosts"][1], expected, "an empty list")
    result: list[str] = []
    for index, item in enumerate(items):
        ictx = hctx.item(index)
        name = read_string(item, ictx, "a host name")
        if name not in names:
            raise ictx.error(item, f"one of the hosts {', '.join(sorted(names))}", repr(name))
        if name in result:
            raise ictx.error(item, "each host once", f"{name!r} again")
        result.append(name)
    return tuple(result)


def _enclave(path_node: Node, node: Node, ctx: YamlContext, known_hosts: tuple[Host, ...] = ()) -> Enclave:
    path = read_string(path_node, ctx, "an enclave path")
    _checked(validate_enclave_path, path, _name_context(ctx, path_node))
    if not isinstance(node, MappingNode):
        raise ctx.error(node, "a mapping with 'node' (single node) or 'nodes' (several)", describe_node(node))
    keys = read_mapping(node, ctx, ())
    if "node" in keys and "nodes" in keys:
        raise ctx.child("nodes").error(
            keys["nodes"][0], "either 'node' (single-node shorthand) or 'nodes', not both", "both"
        )
    if "node" not in keys and "nodes" not in keys:
        raise ctx.error(path_node, "a 'node' key (single-node shorthand) or a 'nodes' list", "neither")
    if "node" in keys:
        keys = read_mapping(node, ctx, _SHORTHAND_KEYS)
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
        items = read_sequence(keys["nodes"][1], nctx, "a non-empty list of nodes")
        if not items:
            raise nctx.error(keys["nodes"][1], "a non-empty list of nodes", "an empty list")
        built = []
        for index, item in enumerate(items):
            ictx = nctx.item(index)
            entry = read_mapping(item, ictx, _NODE_ENTRY_KEYS,
                                 "a mapping with name, namespace, topics, services, actions")
            require_key(entry, "name", item, ictx)
            built.append(_node_grants(entry, "name", ictx, item))
        nodes = tuple(built)
    builtins = read_boolean(keys["builtins"][1], ctx.child("builtins")) if "builtins" in keys else True
    hosts = _enclave_hosts(keys, path_node, ctx, known_hosts)
    return Enclave(path=path, nodes=nodes, builtins=builtins, line=line_of(path_node), hosts=hosts)


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
        # Each ancestor path looked up by name: linear in the number of enclaves, not quadratic.
        tokens = enclave.path[1:].split("/")
        ancestors = [seen[path] for path in ("/" + "/".join(tokens[:k]) for k in range(1, len(tokens))) if path in seen]
        if ancestors:
            other = ancestors[0]
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


def _domain_ids(node: Node, ctx: YamlContext) -> tuple[int, ...]:
    expected = f"a non-empty list of domain ids 0..{MAX_DOMAIN_ID}"
    items = read_sequence(node, ctx, expected)
    if not items:
        raise ctx.error(node, expected, "an empty list")
    ids: list[int] = []
    for index, item in enumerate(items):
        ictx = ctx.item(index)
        value = read_integer(item, ictx, f"an integer domain id 0..{MAX_DOMAIN_ID}")
        if not 0 <= value <= MAX_DOMAIN_ID:
            raise ictx.error(item, f"a domain id 0..{MAX_DOMAIN_ID}", str(value))
        if value in ids:
            raise ictx.error(item, "each domain id once", f"{value} again")
        ids.append(value)
    return tuple(ids)


def _middlewares(node: Node, ctx: YamlContext) -> tuple[str, ...]:
    expected = "a non-empty list of middlewares (" + ", ".join(m.value for m in Middleware) + ")"
    items = read_sequence(node, ctx, expected)
    if not items:
        raise ctx.error(node, expected, "an empty list")
    found: list[str] = []
    for index, item in enumerate(items):
        value = read_choice(item, ctx.item(index), Middleware).value
        if value in found:
            raise ctx.item(index).error(item, "each middleware once", f"{value} again")
        found.append(value)
    return tuple(found)


def _policy(document: YamlDocument) -> WorkcellPolicy:
    root, keys, ctx, version, source = document.root, document.keys, document.ctx, document.version, document.ctx.source
    name = read_string(require_key(keys, "name", root, ctx)[1], ctx.child("name"), "a non-empty cell name")
    domain_ids = _domain_ids(require_key(keys, "domain_ids", root, ctx)[1], ctx.child("domain_ids"))
    middlewares = _middlewares(keys["middlewares"][1], ctx.child("middlewares")) if "middlewares" in keys else None
    governance = _governance(keys["governance"][1],
                             ctx.child("governance")) if "governance" in keys else GovernanceOptions()
    lifetimes = read_lifetimes(keys["certificates"][1],
                               ctx.child("certificates")) if "certificates" in keys else Lifetimes()
    enclaves_node = require_key(keys, "enclaves", root, ctx)[1]
    ectx = ctx.child("enclaves")
    enclave_keys = read_mapping(
        enclaves_node, ectx, (), "a non-empty mapping of enclave path to enclave", key_kind="enclave path"
    )
    if not enclave_keys:
        raise ectx.error(enclaves_node, "a non-empty mapping of enclave path to enclave", describe_node(enclaves_node))
    hosts = _hosts(keys["hosts"][1], ctx.child("hosts")) if "hosts" in keys else ()
    enclaves = [_enclave(key_node, value_node, ectx.child(path), hosts)
                for path, (key_node, value_node) in enclave_keys.items()]
    check_enclave_set(enclaves, source)
    return WorkcellPolicy(
        version=version,
        name=name,
        domain_ids=domain_ids,
        governance=governance,
        lifetimes=lifetimes,
        enclaves=tuple(enclaves),
        source=source,
        **({"middlewares": middlewares} if middlewares else {}),
        hosts=hosts,
    )


def load_policy_text(text: str, source: str) -> WorkcellPolicy:
    """Parse and validate policy YAML ``text``; ``source`` names it in errors (usually the path).

    :raises PolicyError: on YAML syntax errors and on anything the version 1 schema does not allow.
    """
    document = read_document(text, source, _TOP_KEYS, "a policy mapping with version, name, domain_ids, enclaves",
                             SCHEMA_VERSION, PolicyError)
    return _policy(document)


def load_policy(path: Path) -> WorkcellPolicy:
    """Read and validate the workcell policy at ``path`` (UTF-8 YAML, schema version 1).

    :raises PolicyError: when the file cannot be read or is not a valid policy.
    """
    text = read_yaml_file(path, "policy file", PolicyError)
    return load_policy_text(text, str(path))
