"""sros2 policy XML (format 0.2.0) → :class:`WorkcellPolicy`, so existing SROS2 cells can migrate.

Mapping, per ``<enclave path>`` and per ``<profile node ns>`` (one NodeGrants each; several
profiles in one enclave become its ``nodes``):

* ``<topics publish|subscribe>``  → ``topics.publish`` / ``topics.subscribe``
* ``<services reply|request>``    → ``services.serve`` / ``services.call``
* ``<actions execute|call>``      → ``actions.serve`` / ``actions.call``

``DENY``: our model is an allow-list under DDS ``<default>DENY</default>``.  A DENY entry that
cannot match anything the enclave is allowed (no ALLOW pattern of the same direction overlaps its
DDS topics) is redundant and dropped.  Any other DENY, in particular one narrowing an ALLOW
wildcard, cannot be represented: dropping it would silently grant more than the sros2 policy did,
so it is refused with a PolicyError naming the element and line.

XIncludes are expanded first, by :mod:`cobot_security.policy.xinclude` (not by libxml2), within
its budgets.  Errors name the file the element came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any, cast

from lxml import etree

from cobot_security.errors import InvalidNameError, PolicyError
from cobot_security.input_file import read_input_bytes
from cobot_security.names import (
    NameContext,
    has_wildcard,
    validate_enclave_path,
    validate_grant_name,
    validate_namespace,
    validate_node_name,
)
from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.load import MAX_DOMAIN_ID, SCHEMA_VERSION, check_enclave_set
from cobot_security.policy.model import (
    Enclave,
    GovernanceOptions,
    Lifetimes,
    NodeGrants,
    WorkcellPolicy,
)
from cobot_security.policy.xinclude import ORIGIN, check_budget, expand_includes
from cobot_security.policy.xml import MAX_XML_BYTES, element_line, parse_xml

#: The sros2 policy format this importer understands.
SROS2_POLICY_VERSION = "0.2.0"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
#: Concrete DENY topics x ALLOW wildcards compared per enclave (every other check is a set lookup).
_MAX_DENY_COMPARISONS = 1_000_000

#: element tag → (child tag, {attribute: NodeGrants field})
_SECTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "topics": ("topic", {"publish": "publish", "subscribe": "subscribe"}),
    "services": ("service", {"reply": "services_serve", "request": "services_call"}),
    "actions": ("action", {"execute": "actions_serve", "call": "actions_call"}),
}


def _origin(element: etree._Element, default: str) -> str:
    for node in (element, *element.iterancestors()):
        value = node.get(ORIGIN)
        if value is not None:
            return value
    return default


@dataclass
class _Deny:
    """A DENY entry kept until the enclave's ALLOW grants are known."""

    element: etree._Element
    file: str
    grant_field: str
    names: tuple[str, ...]


@dataclass
class _ProfileGrants:
    allowed: dict[str, dict[str, None]] = field(default_factory=dict)
    denied: list[_Deny] = field(default_factory=list)


def _checked_name(validate: Callable[[str, NameContext], str], value: str, where: NameContext) -> str:
    try:
        return validate(value, where)
    except InvalidNameError as exc:
        raise PolicyError(exc.file, exc.field, exc.expected, exc.got, exc.line) from exc


def _where(element: etree._Element, source: str, field_name: str) -> NameContext:
    return NameContext(file=_origin(element, source), field=field_name, line=element_line(element))


def _error(element: etree._Element, source: str, field_name: str, expected: str, got: str) -> PolicyError:
    return PolicyError(_origin(element, source), field_name, expected, got, element_line(element))


def _children(element: etree._Element) -> list[etree._Element]:
    """Child elements, skipping comments and processing instructions."""
    return [child for child in element if isinstance(child.tag, str)]


def _attributes(element: etree._Element) -> dict[str, str]:
    """The element's own attributes (XInclude's xml:base and our origin marker left out)."""
    # lxml-stubs type attribute keys and values as str | bytes; under Python 3 lxml returns str.
    items = cast("list[tuple[str, str]]", element.attrib.items())
    return {key: value for key, value in items if key not in (_XML_BASE, ORIGIN)}


def _name_text(element: etree._Element, source: str, field_name: str) -> str:
    """The whole text of a name element, which must be plain text.

    A comment, processing instruction or element inside a name is refused rather than joined or
    skipped: ``<topic>joint<!--x-->_states</topic>`` would otherwise read as ``joint`` (lxml's
    ``.text`` stops at the comment), silently granting a different topic than the file shows.
    """
    inner = next(iter(element), None)
    if inner is not None:
        kind = ("a comment" if isinstance(inner, etree._Comment)
                else "a processing instruction" if isinstance(inner, etree._ProcessingInstruction)
                else f"an element <{inner.tag}>")
        raise _error(inner, source, field_name,
                     "a name as plain text (no comments, processing instructions or elements inside it)",
                     f"{kind} inside <{element.tag}>")
    return (element.text or "").strip()


def _profile_section(section: etree._Element, label: str, source: str, grants: _ProfileGrants,
                     node: tuple[str, str]) -> None:
    child_tag, fields = _SECTIONS[section.tag]

    def validate(name: str, where: NameContext) -> str:
        return validate_grant_name(name, node[0], node[1], section.tag == "actions", where)

    names = []
    for index, child in enumerate(_children(section)):
        field_name = f"{label}/{section.tag}/{child_tag}[{index + 1}]"
        if child.tag != child_tag:
            raise _error(child, source, field_name, f"<{child_tag}>", f"<{child.tag}>")
        names.append(_checked_name(validate, _name_text(child, source, field_name), _where(child, source, field_name)))
    for attribute, value in _attributes(section).items():
        field_name = f"{label}/{section.tag}/@{attribute}"
        if attribute not in fields:
            raise _error(section, source, field_name, "one of the attributes " + ", ".join(fields), repr(attribute))
        if value == "ALLOW":
            target = grants.allowed.setdefault(fields[attribute], {})
            target.update(dict.fromkeys(names))  # a dict keeps the order and drops repeats in linear time
        elif value == "DENY":
            grants.denied.append(_Deny(section, _origin(section, source), fields[attribute], tuple(names)))
        else:
            raise _error(section, source, field_name, "ALLOW or DENY", repr(value))


def _profile(profile: etree._Element, label: str, source: str) -> tuple[NodeGrants, list[_Deny]]:
    attributes = _attributes(profile)
    unknown = sorted(set(attributes) - {"node", "ns"})
    if unknown:
        raise _error(profile, source, f"{label}/@{unknown[0]}", "only the attributes node and ns", repr(unknown[0]))
    if "node" not in attributes:
        raise _error(profile, source, f"{label}/@node", "a node attribute", "nothing")
    name = _checked_name(validate_node_name, attributes["node"], _where(profile, source, f"{label}/@node"))
    namespace = _checked_name(validate_namespace, attributes.get("ns", "/"), _where(profile, source, f"{label}/@ns"))
    grants = _ProfileGrants()
    for section in _children(profile):
        if section.tag not in _SECTIONS:
            raise _error(section, source, f"{label}/{section.tag}", "<topics>, <services> or <actions>",
                         f"<{section.tag}>")
        _profile_section(section, label, source, grants, (name, namespace))
    node = NodeGrants(
        name=name,
        namespace=namespace,
        line=element_line(profile),
        **{key: tuple(values) for key, values in grants.allowed.items()},
    )
    return node, grants.denied


def _check_denies(enclave: Enclave, denies: list[tuple[NodeGrants, _Deny]]) -> None:
    """Refuse every DENY that could take away something the enclave's ALLOW rules grant.

    A wildcard DENY always could; a concrete one could when an ALLOW names it or an ALLOW wildcard
    matches it.  Concrete ALLOWs are looked up in a set, and the wildcard comparisons are bounded
    (:data:`_MAX_DENY_COMPARISONS`) so that a hostile file cannot make the import quadratic.
    """
    allowed = compute_dds_grants(enclave)
    granted = {direction: (set(topics), [t for t in topics if has_wildcard(t)])
               for direction, topics in (("publish", allowed.publish), ("subscribe", allowed.subscribe))}
    work = 0
    for node, deny in denies:
        denied_field: dict[str, Any] = {deny.grant_field: deny.names}
        probe = Enclave(
            path=enclave.path,
            nodes=(NodeGrants(name=node.name, namespace=node.namespace, **denied_field),),
            builtins=False,
        )
        denied = compute_dds_grants(probe)
        clash = []
        for direction, topics in (("publish", denied.publish), ("subscribe", denied.subscribe)):
            exact, patterns = granted[direction]
            work += len(topics) * len(patterns)
            check_budget(work, _MAX_DENY_COMPARISONS, Path(deny.file), "DENY x ALLOW-wildcard comparisons",
                    element_line(deny.element), f"enclave[@path='{enclave.path}']/{deny.element.tag}")
            clash += [topic for topic in topics if has_wildcard(topic) or topic in exact
                      or any(fnmatchcase(topic, pattern) for pattern in patterns)]
        if clash:
            attribute = next(key for key, value in _attributes(deny.element).items() if value == "DENY")
            raise PolicyError(
                deny.file,
                f"enclave[@path='{enclave.path}']/{deny.element.tag}/@{attribute}",
                "no DENY that narrows an ALLOW (the allow-list model cannot express it; list the allowed"
                " names explicitly instead)",
                f"DENY of {', '.join(deny.names)} overlapping the allowed DDS topic {clash[0]}",
                element_line(deny.element),
            )


def _enclave(element: etree._Element, source: str, builtins: bool) -> Enclave:
    attributes = _attributes(element)
    path = attributes.get("path")
    if path is None or set(attributes) != {"path"}:
        raise _error(element, source, "enclave/@path", "an enclave element with only a path attribute",
                     repr(attributes))
    label = f"enclave[@path='{path}']"
    _checked_name(validate_enclave_path, path, _where(element, source, f"{label}/@path"))
    children = _children(element)
    if [child.tag for child in children] != ["profiles"]:
        raise _error(element, source, label, "exactly one <profiles> element", repr([c.tag for c in children]))
    nodes = []
    denies: list[tuple[NodeGrants, _Deny]] = []
    for index, profile in enumerate(_children(children[0])):
        profile_label = f"{label}/profiles/profile[{index + 1}]"
        if profile.tag != "profile":
            raise _error(profile, source, profile_label, "<profile>", f"<{profile.tag}>")
        node, denied = _profile(profile, profile_label, source)
        nodes.append(node)
        denies.extend((node, deny) for deny in denied)
    if not nodes:
        raise _error(children[0], source, f"{label}/profiles", "at least one <profile>", "none")
    enclave = Enclave(path=path, nodes=tuple(nodes), builtins=builtins, line=element_line(element))
    _check_denies(enclave, denies)
    return enclave


def _policy_name(source: str) -> str:
    name = PurePosixPath(Path(source).name)
    while name.suffix in (".xml", ".policy"):
        name = name.with_suffix("")
    return str(name) or "imported-sros2-policy"


def import_sros2_policy_bytes(
    data: bytes,
    source: str,
    domain_ids: tuple[int, ...] = (0,),
    builtins: bool = True,
    name: str | None = None,
) -> WorkcellPolicy:
    """Convert sros2 policy XML ``data``; XIncludes resolve relative to the file ``source`` names.

    ``builtins`` sets every enclave's ``builtins`` flag: True (default) adds what rmw needs
    (notably ``ros_discovery_info``, which sros2's create_permission also adds); False keeps
    exactly the rules the sros2 file declares.  ``name`` defaults to the file name without
    ``.policy.xml``.

    :raises InputError: on malformed XML or a DOCTYPE / entity declaration (never expanded).
    :raises PolicyError: on anything that is not a valid sros2 0.2.0 policy or a DENY we cannot keep.
    """
    for domain_id in domain_ids:
        if not 0 <= domain_id <= MAX_DOMAIN_ID:
            raise PolicyError(source, "domain_ids", f"domain ids 0..{MAX_DOMAIN_ID}", str(domain_id))
    if not domain_ids:
        raise PolicyError(source, "domain_ids", "at least one domain id", "none")
    root = parse_xml(data, source)
    expand_includes(root, Path(source).resolve())
    if root.tag != "policy":
        raise PolicyError(source, "policy", "a <policy> root element", f"<{root.tag}>", element_line(root))
    version = root.get("version")
    if version != SROS2_POLICY_VERSION:
        raise PolicyError(source, "policy/@version", f'"{SROS2_POLICY_VERSION}"', repr(version), element_line(root))
    children = _children(root)
    if [child.tag for child in children] != ["enclaves"]:
        raise PolicyError(
            source, "policy", "exactly one <enclaves> element", repr([c.tag for c in children]), element_line(root)
        )
    enclaves = []
    for element in _children(children[0]):
        if element.tag != "enclave":
            raise _error(element, source, "policy/enclaves", "<enclave>", f"<{element.tag}>")
        enclaves.append(_enclave(element, source, builtins))
    if not enclaves:
        raise PolicyError(source, "policy/enclaves", "at least one <enclave>", "none", element_line(children[0]))
    check_enclave_set(enclaves, source)
    return WorkcellPolicy(
        version=SCHEMA_VERSION,
        name=name or _policy_name(source),
        domain_ids=tuple(domain_ids),
        governance=GovernanceOptions(),
        lifetimes=Lifetimes(),
        enclaves=tuple(enclaves),
        source=source,
    )


def import_sros2_policy(
    path: Path,
    domain_ids: tuple[int, ...] = (0,),
    builtins: bool = True,
    name: str | None = None,
) -> WorkcellPolicy:
    """Read and convert the sros2 policy file at ``path`` (see :func:`import_sros2_policy_bytes`).

    :raises PolicyError: when the file cannot be read or is not a convertible sros2 policy.
    :raises InputError: on malformed XML or entity declarations.
    """
    data = read_input_bytes(path, "sros2 policy file", MAX_XML_BYTES, PolicyError)
    return import_sros2_policy_bytes(data, str(path), domain_ids=domain_ids, builtins=builtins, name=name)
