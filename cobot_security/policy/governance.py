"""Compile the policy's governance options into a DDS Security governance document."""

from __future__ import annotations

from lxml import etree

from cobot_security.policy.model import WorkcellPolicy
from cobot_security.policy.xml import serialize_xml

_XSI = "http://www.w3.org/2001/XMLSchema-instance"
GOVERNANCE_SCHEMA_LOCATION = "http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_governance.xsd"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def compile_governance(policy: WorkcellPolicy) -> bytes:
    """Governance XML: one domain rule for the policy's domains and one topic rule for ``*``."""
    gov = policy.governance
    root = etree.Element("dds", nsmap={"xsi": _XSI})
    root.set(f"{{{_XSI}}}noNamespaceSchemaLocation", GOVERNANCE_SCHEMA_LOCATION)
    rule = etree.SubElement(etree.SubElement(root, "domain_access_rules"), "domain_rule")
    domains = etree.SubElement(rule, "domains")
    for domain_id in policy.domain_ids:
        etree.SubElement(domains, "id").text = str(domain_id)
    for tag, value in (
        ("allow_unauthenticated_participants", _bool(gov.allow_unauthenticated_participants)),
        ("enable_join_access_control", _bool(gov.enable_join_access_control)),
        ("discovery_protection_kind", gov.discovery_protection.value),
        ("liveliness_protection_kind", gov.liveliness_protection.value),
        ("rtps_protection_kind", gov.rtps_protection.value),
    ):
        etree.SubElement(rule, tag).text = value
    topic_rule = etree.SubElement(etree.SubElement(rule, "topic_access_rules"), "topic_rule")
    for tag, value in (
        ("topic_expression", "*"),
        ("enable_discovery_protection", _bool(gov.discovery_protection.value != "NONE")),
        ("enable_liveliness_protection", _bool(gov.liveliness_protection.value != "NONE")),
        ("enable_read_access_control", _bool(gov.enable_read_access_control)),
        ("enable_write_access_control", _bool(gov.enable_write_access_control)),
        ("metadata_protection_kind", gov.metadata_protection.value),
        ("data_protection_kind", gov.data_protection.value),
    ):
        etree.SubElement(topic_rule, tag).text = value
    return serialize_xml(root)
