"""Compile one enclave of the policy into a DDS Security permissions document (deterministic bytes).

The grant's subject is ``CN=<enclave path>`` (the subject the keystore puts in the certificate),
its validity is the certificate's, every topic not listed is denied (``<default>DENY``).

:func:`grant_digest` and :func:`document_grant_digest` give one canonical digest of what a grant
allows (everything signed except its validity), computed from the policy or read back from a
document on disk, so that "has this enclave's grant changed?" has one answer.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from lxml import etree

from cobot_security.errors import InputError
from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.model import Enclave, WorkcellPolicy
from cobot_security.policy.xml import parse_xml, serialize_xml

_XSI = "http://www.w3.org/2001/XMLSchema-instance"
PERMISSIONS_SCHEMA_LOCATION = "http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_permissions.xsd"


def subject_name(enclave_path: str) -> str:
    """The X.509 subject (RFC 4514 string) of an enclave's identity certificate and grant."""
    return f"CN={enclave_path}"


def _dds_time(value: _dt.datetime) -> str:
    return value.astimezone(_dt.timezone.utc).replace(tzinfo=None, microsecond=0).isoformat()


def _domains(parent: etree._Element, domain_ids: tuple[int, ...]) -> None:
    domains = etree.SubElement(parent, "domains")
    for domain_id in domain_ids:
        etree.SubElement(domains, "id").text = str(domain_id)


def _criteria(rule: etree._Element, tag: str, topics: tuple[str, ...]) -> None:
    if not topics:
        return
    topics_el = etree.SubElement(etree.SubElement(rule, tag), "topics")
    for topic in topics:
        etree.SubElement(topics_el, "topic").text = topic


def compile_permissions(
    policy: WorkcellPolicy,
    enclave: Enclave,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
) -> bytes:
    """Permissions XML for ``enclave``; validity should be the enclave certificate's."""
    grants = compute_dds_grants(enclave)
    root = etree.Element("dds", nsmap={"xsi": _XSI})
    root.set(f"{{{_XSI}}}noNamespaceSchemaLocation", PERMISSIONS_SCHEMA_LOCATION)
    grant = etree.SubElement(etree.SubElement(root, "permissions"), "grant", name=enclave.path)
    etree.SubElement(grant, "subject_name").text = subject_name(enclave.path)
    validity = etree.SubElement(grant, "validity")
    etree.SubElement(validity, "not_before").text = _dds_time(not_before)
    etree.SubElement(validity, "not_after").text = _dds_time(not_after)
    rule = etree.SubElement(grant, "allow_rule")
    _domains(rule, policy.domain_ids)
    _criteria(rule, "publish", grants.publish)
    _criteria(rule, "subscribe", grants.subscribe)
    etree.SubElement(grant, "default").text = "DENY"
    return serialize_xml(root)


def _canonical_digest(subject: str, rules: Sequence[dict[str, object]], default: str) -> str:
    document = {"subject": subject, "rules": list(rules), "default": default}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def grant_digest(policy: WorkcellPolicy, enclave: Enclave) -> str:
    """SHA-256 of what ``enclave``'s compiled grant allows: subject, rules and default, not validity."""
    grants = compute_dds_grants(enclave)
    rule: dict[str, object] = {"kind": "allow_rule", "domains": sorted(policy.domain_ids),
                               "publish": sorted(grants.publish), "subscribe": sorted(grants.subscribe)}
    return _canonical_digest(subject_name(enclave.path), [rule], "DENY")


def _topics(rule: etree._Element, tag: str) -> list[str]:
    return sorted((t.text or "").strip() for t in rule.iterfind(f"{tag}/topics/topic"))


def document_grant_digest(xml: bytes, source: str | Path) -> str | None:
    """The :func:`grant_digest` of a permissions document read back (first grant); None if unreadable.

    Documents made by other tools (sros2) digest by the same rules, so an unchanged grant compares
    equal whoever wrote it; anything unparseable counts as changed (None).
    """
    try:
        root = parse_xml(xml, source)
    except InputError:
        return None
    grant = root.find("permissions/grant")
    if grant is None:
        return None
    rules: list[dict[str, object]] = []
    for rule in grant:
        if rule.tag not in ("allow_rule", "deny_rule"):
            continue
        domains = sorted(int(d.text or "") for d in rule.iterfind("domains/id") if (d.text or "").strip().isdigit())
        rules.append({"kind": rule.tag, "domains": domains,
                      "publish": _topics(rule, "publish"), "subscribe": _topics(rule, "subscribe")})
    return _canonical_digest((grant.findtext("subject_name") or "").strip(), rules,
                             (grant.findtext("default") or "").strip())
