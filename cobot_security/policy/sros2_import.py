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

XIncludes are expanded here, not by libxml2: only ``parse="xml"`` includes of local files inside
the top policy's directory, with an optional ``xpointer(<xpath>)``, each file parsed with the
safe parser (no DTD, no entities, no network).  Errors name the file the element came from.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import urlsplit

from lxml import etree

from cobot_security.errors import InvalidNameError, PolicyError
from cobot_security.names import (
    NameContext,
    has_wildcard,
    validate_enclave_path,
    validate_namespace,
    validate_node_name,
    validate_ros_name,
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
from cobot_security.policy.xml import parse_xml

#: The sros2 policy format this importer understands.
SROS2_POLICY_VERSION = "0.2.0"
_XINCLUDE_NAMESPACES = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
#: Private attribute recording which file an included element came from (never serialised).
_ORIGIN = "{urn:cobot-security:sros2-import}origin"
_XPOINTER = re.compile(r"^\s*xpointer\((.+)\)\s*$", re.DOTALL)
_MAX_INCLUDE_DEPTH = 16
_MAX_INCLUDED_ELEMENTS = 100_000

#: element tag → (child tag, {attribute: NodeGrants field})
_SECTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "topics": ("topic", {"publish": "publish", "subscribe": "subscribe"}),
    "services": ("service", {"reply": "services_serve", "request": "services_call"}),
    "actions": ("action", {"execute": "actions_serve", "call": "actions_call"}),
}


@dataclass
class _Includes:
    """State of one XInclude expansion: the directory includes must stay in, and a size budget."""

    root_dir: Path
    elements: int = 0


def _parse(data: bytes, source: str) -> etree._Element:
    """Parse safely (policy/xml.py: no entities, no DTD, no network).

    :raises InputError: on malformed XML or a DOCTYPE / entity declaration.
    """
    return parse_xml(data, source)


def _line(element: etree._Element) -> int | None:
    """The element's source line (lxml-stubs declare ``sourceline`` untyped; lxml gives ``int | None``)."""
    return cast("int | None", element.sourceline)


def _origin(element: etree._Element, default: str) -> str:
    for node in (element, *element.iterancestors()):
        value = node.get(_ORIGIN)
        if value is not None:
            return value
    return default


def _include_target(include: etree._Element, file: Path, state: _Includes) -> Path:
    href = include.get("href") or ""
    where = (str(file), "xi:include", _line(include))
    parsed = urlsplit(href)
    if not href or parsed.scheme or parsed.netloc or PurePosixPath(parsed.path).is_absolute() or parsed.query:
        raise PolicyError(where[0], where[1], "a relative href to a local file", repr(href), where[2])
    if include.get("parse", "xml") != "xml":
        raise PolicyError(where[0], where[1], 'parse="xml"', repr(include.get("parse")), where[2])
    target = (file.parent / parsed.path).resolve()
    if not target.is_relative_to(state.root_dir):
        raise PolicyError(
            where[0], where[1], f"an included file inside {state.root_dir}", repr(href), where[2]
        )
    return target


def _expand_includes(root: etree._Element, file: Path, state: _Includes, stack: tuple[Path, ...]) -> None:
    """Replace every xi:include below ``root`` by the (xpointer-selected) elements of its file."""
    tags = [f"{{{ns}}}include" for ns in _XINCLUDE_NAMESPACES]
    for include in list(root.iter(*tags)):
        target = _include_target(include, file, state)
        line = _line(include)
        if target in stack or len(stack) >= _MAX_INCLUDE_DEPTH:
            raise PolicyError(file, "xi:include", "no recursive or deeper than 16 includes", str(target), line)
        try:
            data = target.read_bytes()
        except OSError as exc:
            raise PolicyError(file, "xi:include", "a readable included file", f"{target}: {exc.strerror}", line) from None
        included = _parse(data, str(target))
        _expand_includes(included, target, state, (*stack, target))
        xpointer = include.get("xpointer")
        if xpointer is None:
            selected: list[object] = [included]
        else:
            match = _XPOINTER.match(xpointer)
            if match is None:
                raise PolicyError(file, "xi:include/@xpointer", "xpointer(<xpath>)", repr(xpointer), line)
            try:
                result = included.getroottree().xpath(match.group(1))
            except etree.XPathError as exc:
                raise PolicyError(file, "xi:include/@xpointer", "a valid XPath", f"{xpointer!r} ({exc})", line) from None
            selected = list(result) if isinstance(result, list) else [result]
        parent = include.getparent()
        if parent is None:
            raise PolicyError(file, "xi:include", "an include inside the policy element", "the root element", line)
        position = parent.index(include)
        for element in selected:
            if not isinstance(element, etree._Element) or not isinstance(element.tag, str):
                continue  # whitespace text and comments selected by '*'-free XPaths carry no rules
            state.elements += sum(1 for _ in element.iter())
            if state.elements > _MAX_INCLUDED_ELEMENTS:
                raise PolicyError(file, "xi:include", "fewer than 100000 included elements", "more", line)
            clone = copy.deepcopy(element)
            if clone.get(_ORIGIN) is None:
                clone.set(_ORIGIN, str(target))
            parent.insert(position, clone)
            position += 1
        parent.remove(include)


@dataclass
class _Deny:
    """A DENY entry kept until the enclave's ALLOW grants are known."""

    element: etree._Element
    file: str
    grant_field: str
    names: tuple[str, ...]


@dataclass
class _ProfileGrants:
    allowed: dict[str, list[str]] = field(default_factory=dict)
    denied: list[_Deny] = field(default_factory=list)


def _checked_name(validate: Callable[[str, NameContext], str], value: str, where: NameContext) -> str:
    try:
        return validate(value, where)
    except InvalidNameError as exc:
        raise PolicyError(exc.file, exc.field, exc.expected, exc.got, exc.line) from exc


def _where(element: etree._Element, source: str, field_name: str) -> NameContext:
    return NameContext(file=_origin(element, source), field=field_name, line=_line(element))


def _error(element: etree._Element, source: str, field_name: str, expected: str, got: str) -> PolicyError:
    return PolicyError(_origin(element, source), field_name, expected, got, _line(element))


def _children(element: etree._Element) -> list[etree._Element]:
    """Child elements, skipping comments and processing instructions."""
    return [child for child in element if isinstance(child.tag, str)]


def _attributes(element: etree._Element) -> dict[str, str]:
    """The element's own attributes (XInclude's xml:base and our origin marker left out)."""
    # lxml-stubs type attribute keys and values as str | bytes; under Python 3 lxml returns str.
    items = cast("list[tuple[str, str]]", element.attrib.items())
    return {key: value for key, value in items if key not in (_XML_BASE, _ORIGIN)}


def _profile_section(section: etree._Element, label: str, source: str, grants: _ProfileGrants) -> None:
    child_tag, fields = _SECTIONS[section.tag]
    names = []
    for index, child in enumerate(_children(section)):
        field_name = f"{label}/{section.tag}/{child_tag}[{index + 1}]"
        if child.tag != child_tag:
            raise _error(child, source, field_name, f"<{child_tag}>", f"<{child.tag}>")
        text = (child.text or "").strip()
        names.append(_checked_name(_ros_name, text, _where(child, source, field_name)))
    for attribute, value in _attributes(section).items():
        field_name = f"{label}/{section.tag}/@{attribute}"
        if attribute not in fields:
            raise _error(section, source, field_name, "one of the attributes " + ", ".join(fields), repr(attribute))
        if value == "ALLOW":
            target = grants.allowed.setdefault(fields[attribute], [])
            target.extend(name for name in names if name not in target)
        elif value == "DENY":
            grants.denied.append(_Deny(section, _origin(section, source), fields[attribute], tuple(names)))
        else:
            raise _error(section, source, field_name, "ALLOW or DENY", repr(value))


def _ros_name(name: str, where: NameContext) -> str:
    return validate_ros_name(name, where, wildcards=True)


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
            raise _error(section, source, f"{label}/{section.tag}", "<topics>, <services> or <actions>", f"<{section.tag}>")
        _profile_section(section, label, source, grants)
    node = NodeGrants(
        name=name,
        namespace=namespace,
        line=_line(profile),
        **{key: tuple(values) for key, values in grants.allowed.items()},
    )
    return node, grants.denied


def _overlaps(patterns: tuple[str, ...], name: str) -> bool:
    return any(fnmatchcase(name, pattern) or fnmatchcase(pattern, name) for pattern in patterns)


def _check_denies(enclave: Enclave, denies: list[tuple[NodeGrants, _Deny]]) -> None:
    """Refuse every DENY that could take away something the enclave's ALLOW rules grant."""
    allowed = compute_dds_grants(enclave)
    for node, deny in denies:
        denied_field: dict[str, Any] = {deny.grant_field: deny.names}
        probe = Enclave(
            path=enclave.path,
            nodes=(NodeGrants(name=node.name, namespace=node.namespace, **denied_field),),
            builtins=False,
        )
        denied = compute_dds_grants(probe)
        clash = [
            topic
            for topics, granted in ((denied.publish, allowed.publish), (denied.subscribe, allowed.subscribe))
            for topic in topics
            if has_wildcard(topic) or _overlaps(granted, topic)
        ]
        if clash:
            attribute = next(key for key, value in _attributes(deny.element).items() if value == "DENY")
            raise PolicyError(
                deny.file,
                f"enclave[@path='{enclave.path}']/{deny.element.tag}/@{attribute}",
                "no DENY that narrows an ALLOW (the allow-list model cannot express it; list the allowed"
                " names explicitly instead)",
                f"DENY of {', '.join(deny.names)} overlapping the allowed DDS topic {clash[0]}",
                _line(deny.element),
            )


def _enclave(element: etree._Element, source: str, builtins: bool) -> Enclave:
    attributes = _attributes(element)
    path = attributes.get("path")
    if path is None or set(attributes) != {"path"}:
        raise _error(element, source, "enclave/@path", "an enclave element with only a path attribute", repr(attributes))
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
    enclave = Enclave(path=path, nodes=tuple(nodes), builtins=builtins, line=_line(element))
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
    root = _parse(data, source)
    file = Path(source).resolve()
    _expand_includes(root, file, _Includes(root_dir=file.parent), (file,))
    if root.tag != "policy":
        raise PolicyError(source, "policy", "a <policy> root element", f"<{root.tag}>", _line(root))
    version = root.get("version")
    if version != SROS2_POLICY_VERSION:
        raise PolicyError(source, "policy/@version", f'"{SROS2_POLICY_VERSION}"', repr(version), _line(root))
    children = _children(root)
    if [child.tag for child in children] != ["enclaves"]:
        raise PolicyError(
            source, "policy", "exactly one <enclaves> element", repr([c.tag for c in children]), _line(root)
        )
    enclaves = []
    for element in _children(children[0]):
        if element.tag != "enclave":
            raise _error(element, source, "policy/enclaves", "<enclave>", f"<{element.tag}>")
        enclaves.append(_enclave(element, source, builtins))
    if not enclaves:
        raise PolicyError(source, "policy/enclaves", "at least one <enclave>", "none", _line(children[0]))
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
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyError(path, None, "a readable sros2 policy file", exc.strerror or type(exc).__name__) from None
    return import_sros2_policy_bytes(data, str(path), domain_ids=domain_ids, builtins=builtins, name=name)
