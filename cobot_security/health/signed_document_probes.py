"""Signed document probes: each enclave's permissions.p7s and the keystore's governance.p7s.

Both verify with the permissions CA and are compared with what the policy asks for
(PERMISSIONS_VALIDITY, GOVERNANCE).  XML is parsed without entities, DTDs or network.
"""

from __future__ import annotations

import datetime as _dt

from lxml import etree

from cobot_security import checks
from cobot_security.clock import days_left, iso_utc
from cobot_security.errors import KeystoreError
from cobot_security.health.probe import KEYSTORE_SUBJECT, load_certificate_file
from cobot_security.keystore import smime
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import CERT, PERMISSIONS_P7S, PERMISSIONS_XML, KeystoreLayout
from cobot_security.policy.model import Enclave, Protection, WorkcellPolicy
from cobot_security.policy.permissions import compile_permissions
from cobot_security.status import Finding, Level

_RANK = {Protection.NONE: 0, Protection.SIGN: 1, Protection.ENCRYPT: 2}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _parse_dds_time(text: str | None) -> _dt.datetime:
    if not text:
        raise ValueError("empty time")
    value = _dt.datetime.fromisoformat(text.strip())
    return value if value.tzinfo is not None else value.replace(tzinfo=_dt.timezone.utc)


def _permissions_finding(
    layout: KeystoreLayout, policy: WorkcellPolicy, enclave: Enclave, now: _dt.datetime
) -> Finding:
    directory = layout.enclave_dir(enclave.path)
    values: tuple[tuple[str, str], ...] = (("enclave", enclave.path),)

    def error(message: str) -> Finding:
        return Finding(checks.PERMISSIONS_VALIDITY, enclave.path, Level.ERROR, message, values)

    try:
        p7s = read_keystore_file(layout, directory / PERMISSIONS_P7S)
        xml = read_keystore_file(layout, directory / PERMISSIONS_XML)
        cert = load_certificate_file(layout, directory / CERT)
    except (OSError, KeystoreError):
        return error("permissions.p7s, permissions.xml or cert.pem missing or unreadable")
    try:
        signed = smime.verify_smime(p7s, layout.permissions_ca_cert, at=now, source=directory / PERMISSIONS_P7S)
    except KeystoreError:
        return error("permissions.p7s does not verify with the permissions CA")
    if signed.rstrip(b"\n") != xml.rstrip(b"\n"):
        return error("permissions.p7s content differs from permissions.xml")
    try:
        root = etree.fromstring(signed, _PARSER)
        grant = root.find("permissions/grant")
        if grant is None:
            return error("no grant in permissions.p7s")
        subject = (grant.findtext("subject_name") or "").strip()
        not_before = _parse_dds_time(grant.findtext("validity/not_before"))
        not_after = _parse_dds_time(grant.findtext("validity/not_after"))
    except (etree.XMLSyntaxError, ValueError):
        return error("permissions.p7s is not a readable permissions document")
    values = values + (("not_after", iso_utc(not_after)), ("days_left", str(days_left(not_after, now))))
    if subject != cert.subject.rfc4514_string():
        return error(f"grant subject {subject!r} does not match the certificate "
                     f"{cert.subject.rfc4514_string()!r}")
    if not not_before <= now <= not_after:
        return error(f"grant not valid now (valid {iso_utc(not_before)} to {iso_utc(not_after)})")
    if compile_permissions(policy, enclave, not_before, not_after).rstrip(b"\n") != signed.rstrip(b"\n"):
        return Finding(checks.PERMISSIONS_VALIDITY, enclave.path, Level.WARN,
                       "grant differs from the policy: policy changed, re-issue", values)
    return Finding(checks.PERMISSIONS_VALIDITY, enclave.path, Level.OK,
                   "signed grant valid and matching the policy", values)


def probe_permissions(layout: KeystoreLayout, policy: WorkcellPolicy, now: _dt.datetime) -> list[Finding]:
    """PERMISSIONS_VALIDITY per enclave: signature, content, subject, validity at ``now``, drift.

    A grant that verifies but no longer equals what the policy compiles to (with the grant's own
    validity) is WARN "policy changed, re-issue"; every other failure is ERROR.
    """
    return [_permissions_finding(layout, policy, enclave, now) for enclave in policy.enclaves]


def _governance_problems(root: etree._Element, policy: WorkcellPolicy) -> list[str]:
    gov = policy.governance
    problems: list[str] = []
    rules = root.findall("domain_access_rules/domain_rule")
    if not rules:
        return ["no domain_rule"]

    def weaker(where: str, tag: str, text: str | None, minimum: Protection) -> None:
        try:
            kind = Protection((text or "").strip())
        except ValueError:
            problems.append(f"{where}{tag}: expected NONE, SIGN or ENCRYPT, got {text!r}")
            return
        if _RANK[kind] < _RANK[minimum]:
            problems.append(f"{where}{tag}: expected at least {minimum.value}, got {kind.value}")

    def looser(where: str, tag: str, text: str | None, wanted: bool, secure: bool) -> None:
        value = (text or "").strip().lower() in ("true", "1")
        if wanted == secure and value != secure:
            problems.append(f"{where}{tag}: expected {str(secure).lower()}, got {str(value).lower()}")

    for rule in rules:
        looser("", "allow_unauthenticated_participants", rule.findtext("allow_unauthenticated_participants"),
               gov.allow_unauthenticated_participants, False)
        looser("", "enable_join_access_control", rule.findtext("enable_join_access_control"),
               gov.enable_join_access_control, True)
        weaker("", "rtps_protection_kind", rule.findtext("rtps_protection_kind"), gov.rtps_protection)
        weaker("", "discovery_protection_kind", rule.findtext("discovery_protection_kind"),
               gov.discovery_protection)
        weaker("", "liveliness_protection_kind", rule.findtext("liveliness_protection_kind"),
               gov.liveliness_protection)
        topic_rules = rule.findall("topic_access_rules/topic_rule")
        if not topic_rules:
            problems.append("no topic_rule")
        for topic_rule in topic_rules:
            where = f"topic_rule {topic_rule.findtext('topic_expression')!r}: "
            weaker(where, "metadata_protection_kind", topic_rule.findtext("metadata_protection_kind"),
                   gov.metadata_protection)
            weaker(where, "data_protection_kind", topic_rule.findtext("data_protection_kind"), gov.data_protection)
            looser(where, "enable_read_access_control", topic_rule.findtext("enable_read_access_control"),
                   gov.enable_read_access_control, True)
            looser(where, "enable_write_access_control", topic_rule.findtext("enable_write_access_control"),
                   gov.enable_write_access_control, True)
    return problems


def probe_governance(
    layout: KeystoreLayout, policy: WorkcellPolicy, *, now: _dt.datetime | None = None
) -> list[Finding]:
    """GOVERNANCE for the keystore: governance.p7s verifies and is no weaker than the policy.

    Each protection kind must be at least the policy's (NONE < SIGN < ENCRYPT), and
    allow_unauthenticated_participants / join, read and write access control may not be more
    permissive than the policy asks.  ``now`` is the time the CA's validity is judged at; without
    it, the CA's own start of validity (the signature alone is checked; CA expiry is not this
    probe's question).
    """

    def finding(level: Level, message: str) -> list[Finding]:
        return [Finding(checks.GOVERNANCE, KEYSTORE_SUBJECT, level, message)]

    try:
        p7s = read_keystore_file(layout, layout.governance_p7s)
        at = now or load_certificate_file(layout, layout.permissions_ca_cert).not_valid_before_utc
    except (OSError, KeystoreError):
        return finding(Level.ERROR, "governance.p7s or the permissions CA certificate missing or unreadable")
    try:
        signed = smime.verify_smime(p7s, layout.permissions_ca_cert, at=at, source=layout.governance_p7s)
    except KeystoreError:
        return finding(Level.ERROR, "governance.p7s does not verify with the permissions CA")
    try:
        root = etree.fromstring(signed, _PARSER)
    except etree.XMLSyntaxError:
        return finding(Level.ERROR, "governance.p7s is not a readable governance document")
    problems = _governance_problems(root, policy)
    if problems:
        return finding(Level.ERROR, "governance weaker than the policy: " + "; ".join(problems))
    return finding(Level.OK, "signed governance meets the policy")
