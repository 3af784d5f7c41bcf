"""Safe XML parsing and deterministic serialisation shared by the compilers and the sros2 importer.

Parsing never resolves entities, never touches the network and refuses big or deep trees
(:data:`MAX_XML_BYTES`, :data:`MAX_XML_DEPTH`), because policies and permissions may come from
untrusted hands.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from lxml import etree

from cobot_security.errors import InputError

#: Largest XML document parsed (1 MiB: an sros2 policy of well over a thousand profiles).
MAX_XML_BYTES = 1 << 20
#: Deepest element nesting accepted (an sros2 policy needs 7 levels; libxml2 alone stops at 256).
MAX_XML_DEPTH = 32


def safe_parser() -> etree.XMLParser:
    """An lxml parser with entity expansion, DTD loading and network access switched off."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=False
    )


def element_line(element: etree._Element) -> int | None:
    """The element's source line (lxml-stubs declare ``sourceline`` untyped; lxml gives ``int | None``)."""
    return cast("int | None", element.sourceline)


def _check_depth(root: etree._Element, source: str | Path) -> None:
    """Refuse elements nested deeper than :data:`MAX_XML_DEPTH` (iteratively: no recursion)."""
    depth = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        if depth > MAX_XML_DEPTH:
            raise InputError(source, None, f"XML elements nested at most {MAX_XML_DEPTH} deep",
                             f"<{element.tag}> nested deeper", element.sourceline)


def parse_xml(data: bytes, source: str | Path) -> etree._Element:
    """Parse ``data`` safely and refuse any DOCTYPE; errors name ``source`` and the line.

    :raises InputError: when the bytes are not well-formed XML, carry a DTD / entity declarations,
        are longer than :data:`MAX_XML_BYTES` or nest deeper than :data:`MAX_XML_DEPTH`.
    """
    if len(data) > MAX_XML_BYTES:
        raise InputError(source, None, f"an XML document of at most {MAX_XML_BYTES} bytes", f"{len(data)} bytes")
    if any(marker in data for marker in (b"<!ENTITY", "<!ENTITY".encode("utf-16-le"), "<!ENTITY".encode("utf-16-be"))):
        # Checked before parsing so that even an entity bomb libxml2 would give up on mid-parse gets
        # this message; the parser never expands entities either way (resolve_entities=False).
        raise InputError(source, "DOCTYPE", "XML without entity declarations", "an <!ENTITY> declaration")
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        if "Excessive depth" in str(exc.msg):  # libxml2's own limit (256) hit before ours could be
            raise InputError(source, None, f"XML elements nested at most {MAX_XML_DEPTH} deep",
                             "deeper nesting", exc.lineno) from None
        raise InputError(source, None, "well-formed XML", str(exc.msg), exc.lineno) from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.system_url or docinfo.public_id:
        raise InputError(source, "DOCTYPE", "XML without a DOCTYPE or entity declarations", "a DOCTYPE", 1)
    _check_depth(root, source)
    return root


def serialize_xml(root: etree._Element) -> bytes:
    """Pretty, UTF-8, with declaration: the byte-stable form we sign and write to keystores."""
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
