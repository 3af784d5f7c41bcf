"""XInclude expansion for the sros2 importer, with bounded work: no include bomb or expensive
xpointer can make an import run for minutes.

Only ``parse="xml"`` includes of regular files inside the top policy's directory are expanded,
each file read and parsed once (policy/xml.py's safe parser: no DTD, no entities, no network,
size and depth limits) however often it is included.  An ``xpointer(<path>)`` is restricted to a
subset of XPath whose cost is linear in the included document (:data:`_XP_EXPECTED`), and every
include, parsed byte, xpointer evaluation and copied element is charged to a budget; the first
budget exceeded is a one-line PolicyError naming the file and line of the include.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from lxml import etree

from cobot_security.errors import PolicyError
from cobot_security.input_file import read_input_bytes
from cobot_security.policy.xml import MAX_XML_BYTES, element_line, parse_xml

__all__ = ["ORIGIN", "check_budget", "expand_includes"]

#: Private attribute recording which file an included element came from (never serialised).
ORIGIN = "{urn:cobot-security:sros2-import}origin"
_XINCLUDE_NAMESPACES = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
_XPOINTER = re.compile(r"\s*xpointer\((.+)\)\s*", re.DOTALL)
# The XPath subset an xpointer may use: absolute child steps (an optional leading '//'), each a name
# or '*' with [@attr='value'], [@attr] or [n] predicates.  Every step then visits each element of
# the document at most once, so one evaluation costs at most (steps + 1) x elements.
_XP_NAME = r"[A-Za-z_][A-Za-z0-9_.-]*"
_XP_PREDICATE = rf"\[(?:@{_XP_NAME}(?:\s*=\s*(?:'[^']*'|\"[^\"]*\"))?|[1-9][0-9]{{0,5}})\]"
_XP_STEP = rf"(?:{_XP_NAME}|\*)(?:{_XP_PREDICATE})*"
_XP_PATH = re.compile(rf"//?{_XP_STEP}(?:/{_XP_STEP})*")
_XP_STEPS = re.compile(rf"/{_XP_STEP}")
_XP_EXPECTED = ("xpointer(<path>) with a path of child steps like /policy/enclaves/* (an optional leading //,"
                " predicates [@attr='value'], [@attr] or [n] only)")
_MAX_XPOINTER_STEPS = 16
_MAX_INCLUDE_DEPTH = 16
#: Every xi:include element counts, whether its xpointer selects anything or not.
_MAX_INCLUDES = 256
_MAX_INCLUDED_ELEMENTS = 100_000
#: Element visits of all xpointer evaluations together ((steps + 1) x elements of the document).
_MAX_XPOINTER_WORK = 2_000_000
#: Bytes of all the distinct included files together (each is parsed once).
_MAX_INCLUDED_BYTES = 8 * MAX_XML_BYTES

@dataclass
class _Included:
    """One included file, parsed and expanded once: its root, how many include levels lie below
    it, and how many nodes it holds (the unit of xpointer work)."""

    root: etree._Element
    height: int
    nodes: int


@dataclass
class _Includes:
    """State of one XInclude expansion: the directory includes must stay in, the budgets spent so
    far, and every file already parsed (an include bomb of the same file re-parses nothing)."""

    root_dir: Path
    elements: int = 0
    includes: int = 0
    work: int = 0
    parsed_bytes: int = 0
    cache: dict[Path, _Included] = field(default_factory=dict)


def _parse(data: bytes, source: str) -> etree._Element:
    """Parse safely (policy/xml.py: no entities, no DTD, no network).

    :raises InputError: on malformed XML or a DOCTYPE / entity declaration.
    """
    return parse_xml(data, source)


def _include_target(include: etree._Element, file: Path, state: _Includes) -> Path:
    href = include.get("href") or ""
    where = (str(file), "xi:include", element_line(include))
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


def check_budget(spent: int, limit: int, file: Path, what: str, line: int | None,
                 field_name: str = "xi:include") -> None:
    """Refuse once ``spent`` exceeds ``limit`` (of ``what``): one line naming the file and line.

    :raises PolicyError: when the budget is exceeded.
    """
    if spent > limit:
        raise PolicyError(file, field_name, f"at most {limit} {what} in all", "more", line)


def _load_included(target: Path, file: Path, line: int | None, state: _Includes,
                   stack: tuple[Path, ...]) -> _Included:
    """``target`` parsed and expanded (from the cache after the first time)."""
    cached = state.cache.get(target)
    if cached is not None:
        return cached
    data = read_input_bytes(target, "included XML file", MAX_XML_BYTES, PolicyError, regular_only=True)
    state.parsed_bytes += len(data)
    check_budget(state.parsed_bytes, _MAX_INCLUDED_BYTES, file, "bytes of included files", line)
    root = _parse(data, str(target))
    height = _expand_includes(root, target, state, (*stack, target))
    included = _Included(root, height, sum(1 for _ in root.iter()))
    state.cache[target] = included
    return included


def _select(include: etree._Element, included: _Included, file: Path, state: _Includes) -> list[object]:
    """What the include's xpointer selects in ``included`` (the whole root without one)."""
    xpointer = include.get("xpointer")
    line = element_line(include)
    if xpointer is None:
        return [included.root]
    match = _XPOINTER.fullmatch(xpointer)
    path = match.group(1).strip() if match else ""
    steps = len(_XP_STEPS.findall(path))
    if not _XP_PATH.fullmatch(path) or steps > _MAX_XPOINTER_STEPS:
        raise PolicyError(file, "xi:include/@xpointer", _XP_EXPECTED, repr(xpointer), line)
    state.work += (steps + 1) * included.nodes
    check_budget(state.work, _MAX_XPOINTER_WORK, file, "element visits by xpointers", line, "xi:include/@xpointer")
    try:
        result = included.root.getroottree().xpath(path)
    except etree.XPathError as exc:
        raise PolicyError(file, "xi:include/@xpointer", "a valid XPath", f"{xpointer!r} ({exc})", line) from None
    return list(result) if isinstance(result, list) else [result]


def _expand_includes(root: etree._Element, file: Path, state: _Includes, stack: tuple[Path, ...]) -> int:
    """Replace every xi:include below ``root`` by the (xpointer-selected) elements of its file;
    return how many include levels lie below ``root``'s file."""
    tags = [f"{{{ns}}}include" for ns in _XINCLUDE_NAMESPACES]
    height = 0
    for include in list(root.iter(*tags)):
        line = element_line(include)
        state.includes += 1
        check_budget(state.includes, _MAX_INCLUDES, file, "xi:include elements", line)
        target = _include_target(include, file, state)
        if target in stack:
            raise PolicyError(file, "xi:include", "no recursive includes", str(target), line)
        included = _load_included(target, file, line, state, stack)
        if len(stack) + 1 + included.height > _MAX_INCLUDE_DEPTH:
            raise PolicyError(file, "xi:include", f"includes nested at most {_MAX_INCLUDE_DEPTH} deep",
                              str(target), line)
        height = max(height, included.height + 1)
        parent = include.getparent()
        if parent is None:
            raise PolicyError(file, "xi:include", "an include inside the policy element", "the root element", line)
        position = parent.index(include)
        for element in _select(include, included, file, state):
            if not isinstance(element, etree._Element) or not isinstance(element.tag, str):
                continue  # whitespace text and comments selected by '*'-free XPaths carry no rules
            state.elements += sum(1 for _ in element.iter())
            check_budget(state.elements, _MAX_INCLUDED_ELEMENTS, file, "included elements", line)
            clone = copy.deepcopy(element)
            if clone.get(ORIGIN) is None:
                clone.set(ORIGIN, str(target))
            parent.insert(position, clone)
            position += 1
        parent.remove(include)
    return height


def expand_includes(root: etree._Element, file: Path) -> None:
    """Replace every xi:include below ``root`` (parsed from ``file``) by what it selects, in place.

    :raises PolicyError: on an unsafe or unreadable include, a recursion, an xpointer outside the
        subset, or any budget exceeded.
    :raises InputError: on malformed XML or a DOCTYPE / entity declaration in an included file.
    """
    _expand_includes(root, file, _Includes(root_dir=file.parent), (file,))
