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
    """Parse ``data`` safely; a syntax error becomes an InputError naming ``source`` and the line.

    :raises InputError: when the bytes are not well-formed XML or declare entities.
    """
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise InputError(source, None, "well-formed XML", str(exc.msg), exc.lineno) from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None and "<!ENTITY" in data.decode("utf-8", "replace"):
        raise InputError(source, "DOCTYPE", "XML without entity declarations", "an <!ENTITY> declaration")
    return root


def serialize_xml(root: etree._Element) -> bytes:
    """Pretty, UTF-8, with declaration: the byte-stable form we sign and write to keystores."""
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
