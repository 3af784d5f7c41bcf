"""Safe XML parsing and deterministic serialisation shared by the compilers and the sros2 importer.

Parsing never resolves entities, never touches the network and refuses huge trees, because
policies and permissions may come from untrusted hands.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from cobot_security.errors import InputError


def safe_parser() -> etree.XMLParser:
    """An lxml parser with entity expansion, DTD loading and network access switched off."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=False
    )


def parse_xml(data: bytes, source: str | Path) -> etree._Element:
    """Parse ``data`` safely and refuse any DOCTYPE; errors name ``source`` and the line.

    :raises InputError: when the bytes are not well-formed XML or carry a DTD / entity declarations.
    """
    if any(marker in data for marker in (b"<!ENTITY", "<!ENTITY".encode("utf-16-le"), "<!ENTITY".encode("utf-16-be"))):
        # Checked before parsing so that even an entity bomb libxml2 would give up on mid-parse gets
        # this message; the parser never expands entities either way (resolve_entities=False).
        raise InputError(source, "DOCTYPE", "XML without entity declarations", "an <!ENTITY> declaration")
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise InputError(source, None, "well-formed XML", str(exc.msg), exc.lineno) from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.system_url or docinfo.public_id:
        raise InputError(source, "DOCTYPE", "XML without a DOCTYPE or entity declarations", "a DOCTYPE", 1)
    return root


def serialize_xml(root: etree._Element) -> bytes:
    """Pretty, UTF-8, with declaration: the byte-stable form we sign and write to keystores."""
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
