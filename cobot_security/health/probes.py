"""Health probes: pure functions from keystore files, environment and graph facts to Findings.

Every probe takes its facts as arguments (``now``, ``environ``, the uid, graph snapshots) and
returns a list of :class:`~cobot_security.status.Finding` named by a check of
:mod:`cobot_security.checks`.  Probes never print and never carry key material in a
message; a probe that raises is turned into an ERROR finding by the reporter.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import math
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from lxml import etree

from cobot_security import checks
from cobot_security.clock import days_left, iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore import pki, smime
from cobot_security.keystore.audit import verify_audit_log
from cobot_security.keystore.evidence import read_verify_result
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.layout import (
    CERT,
    KEY,
    PERMISSIONS_P7S,
    PERMISSIONS_XML,
    KeystoreLayout,
)
from cobot_security.keystore.revocation import load_crl
from cobot_security.names import mangle_topic, resolve_name
from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.model import Enclave, Protection, WorkcellPolicy
from cobot_security.policy.permissions import compile_permissions, subject_name
from cobot_security.scan.results import read_scan_record, read_scan_results
from cobot_security.status import Finding, Level

KEYSTORE_SUBJECT = "keystore"
CA_SUBJECT = "ca"
CRL_FILE = "crl.pem"
#: How many file names an integrity finding lists before "... and N more".
_SHOW_FILES = 3
_RANK = {Protection.NONE: 0, Protection.SIGN: 1, Protection.ENCRYPT: 2}
_BUILTIN_TOPICS = ("/rosout", "/parameter_events")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _load_cert(path: Path) -> x509.Certificate:
    return pki.load_certificate(path.read_bytes(), path)


# --- certificates -------------------------------------------------------------------------------

def _expiry_finding(
    enclave: str, cert: x509.Certificate, now: _dt.datetime, warn_days: int, error_days: int
) -> Finding:
    not_after, not_before = cert.not_valid_after_utc, cert.not_valid_before_utc
    days = days_left(not_after, now)
    values = (("enclave", enclave), ("not_after", iso_utc(not_after)), ("days_left", str(days)))
    remaining = not_after - now
    if now < not_before:
        level, message = Level.ERROR, f"certificate not valid before {iso_utc(not_before)}"
    elif now > not_after:
        level, message = Level.ERROR, f"certificate expired at {iso_utc(not_after)}"
    elif remaining <= _dt.timedelta(days=error_days):
        level, message = Level.ERROR, f"certificate expires in {days} days (error at {error_days})"
    elif remaining <= _dt.timedelta(days=warn_days):
        level, message = Level.WARN, f"certificate expires in {days} days (warn at {warn_days})"
    else:
        level, message = Level.OK, f"certificate valid for {days} more days"
    return Finding(checks.CERT_EXPIRY, enclave, level, message, values)


def _chain_problem(enclave: str, cert: x509.Certificate, ca: x509.Certificate) -> str | None:
    if cert.issuer != ca.subject:
        return f"issuer {cert.issuer.rfc4514_string()} is not the identity CA {ca.subject.rfc4514_string()}"
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return "signature does not verify with the identity CA"
    expected = subject_name(enclave)
    if cert.subject.rfc4514_string() != expected:
        return f"subject: expected {expected}, got {cert.subject.rfc4514_string()}"
    return None


def _load_crl_quietly(layout: KeystoreLayout) -> x509.CertificateRevocationList | None:
    """The keystore's CRL, or None when absent or unreadable (probe_crl reports those cases)."""
    try:
        return load_crl(layout)
    except (OSError, KeystoreError, ValueError):
        return None


def probe_certificates(
    layout: KeystoreLayout,
    policy: WorkcellPolicy,
    now: _dt.datetime,
    warn_days: int = 30,
    error_days: int = 7,
) -> list[Finding]:
    """CERT_EXPIRY and CERT_CHAIN for every policy enclave.

    Expiry: ERROR when missing, not yet valid, expired or ``not_after - now <= error_days``; WARN
    when ``<= warn_days``; OK otherwise.  Chain: issued and signed by the identity CA, with subject
    ``CN=<enclave path>``.
    """
    findings: list[Finding] = []
    ca: x509.Certificate | None
    try:
        ca = _load_cert(layout.identity_ca_cert)
    except (OSError, KeystoreError):
        ca = None
    crl = _load_crl_quietly(layout)
    for enclave in policy.enclaves:
        path = layout.enclave_file(enclave.path, CERT)
        values = (("enclave", enclave.path),)
        try:
            cert = _load_cert(path)
        except (OSError, KeystoreError):
            message = f"certificate missing or unreadable ({path.relative_to(layout.root)})"
            findings.append(Finding(checks.CERT_EXPIRY, enclave.path, Level.ERROR, message, values))
            findings.append(Finding(checks.CERT_CHAIN, enclave.path, Level.ERROR, message, values))
            continue
        findings.append(_expiry_finding(enclave.path, cert, now, warn_days, error_days))
        problem = "identity CA certificate missing or unreadable" if ca is None else \
            _chain_problem(enclave.path, cert, ca)
        revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number) if crl is not None else None
        if revoked is not None and not problem:
            # The policy still names an enclave whose identity is on the CRL: peers refuse it.
            problem = (f"certificate serial {cert.serial_number:x} is revoked (on the CRL since "
                       f"{revoked.revocation_date_utc.isoformat()}): re-issue or remove the enclave")
        findings.append(Finding(
            checks.CERT_CHAIN, enclave.path, Level.ERROR if problem else Level.OK,
            problem or "issued by the identity CA for this enclave", values,
        ))
    return findings


# --- permissions --------------------------------------------------------------------------------

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
        p7s = (directory / PERMISSIONS_P7S).read_bytes()
        xml = (directory / PERMISSIONS_XML).read_bytes()
        cert = _load_cert(directory / CERT)
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


# --- governance ---------------------------------------------------------------------------------

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
        p7s = layout.governance_p7s.read_bytes()
        at = now or _load_cert(layout.permissions_ca_cert).not_valid_before_utc
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


# --- CRL ----------------------------------------------------------------------------------------

def _find_crls(layout: KeystoreLayout) -> list[Path]:
    found: dict[str, Path] = {}
    candidates = [layout.public_dir / CRL_FILE]
    for current, dirs, files in os.walk(layout.enclaves_dir, followlinks=False):
        dirs.sort()
        if CRL_FILE in files:
            candidates.append(Path(current) / CRL_FILE)
    for path in candidates:
        if path.exists():
            found.setdefault(os.path.realpath(path), path)
    return list(found.values())


def _crl_verdict(layout: KeystoreLayout, path: Path, ca: x509.Certificate | None,
                 now: _dt.datetime) -> tuple[Level, str, _dt.datetime | None]:
    rel = path.relative_to(layout.root).as_posix()
    try:
        crl = x509.load_pem_x509_crl(path.read_bytes())
    except (OSError, ValueError):
        return Level.ERROR, f"{rel}: not a readable PEM CRL", None
    if ca is None:
        return Level.ERROR, f"{rel}: identity CA certificate missing or unreadable", None
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        return Level.ERROR, f"{rel}: not signed by the identity CA", None
    next_update = crl.next_update_utc
    if next_update is None:
        return Level.ERROR, f"{rel}: no next update", None
    if crl.last_update_utc > now:
        return Level.ERROR, f"{rel}: issued in the future ({iso_utc(crl.last_update_utc)})", next_update
    if next_update <= now:
        return Level.ERROR, f"{rel}: stale since {iso_utc(next_update)}", next_update
    if next_update - now <= _dt.timedelta(days=1):
        return Level.WARN, f"{rel}: next update due {iso_utc(next_update)}", next_update
    return Level.OK, f"{rel}: current until {iso_utc(next_update)}", next_update


def probe_crl(layout: KeystoreLayout, now: _dt.datetime) -> list[Finding]:
    """CRL for the keystore: every crl.pem (public/ or an enclave) signed by the identity CA and current.

    None found → WARN (revocation impossible); stale, unsigned or unreadable → ERROR; within one day
    of next_update → WARN.
    """
    paths = _find_crls(layout)
    if not paths:
        return [Finding(checks.CRL, KEYSTORE_SUBJECT, Level.WARN, "no CRL: revocation not possible")]
    try:
        ca: x509.Certificate | None = _load_cert(layout.identity_ca_cert)
    except (OSError, KeystoreError):
        ca = None
    verdicts = [_crl_verdict(layout, path, ca, now) for path in paths]
    level = max(v[0] for v in verdicts)
    shown = [v for v in verdicts if v[0] == level]
    updates = [v[2] for v in verdicts if v[2] is not None]
    values = (("next_update", iso_utc(min(updates))),) if updates else ()
    return [Finding(checks.CRL, KEYSTORE_SUBJECT, level, "; ".join(v[1] for v in shown), values)]


# --- key modes ----------------------------------------------------------------------------------

def _mode_problem(path: Path, expected_uid: int, max_mode: int, what: str) -> str | None:
    try:
        st = path.lstat()
    except OSError:
        return f"{what} missing"
    if stat.S_ISLNK(st.st_mode):
        return f"{what} is a symlink"
    mode = stat.S_IMODE(st.st_mode)
    if mode & ~max_mode:
        return f"{what} mode {mode:04o}, expected {max_mode:04o} or stricter"
    if st.st_uid != expected_uid:
        return f"{what} owned by uid {st.st_uid}, expected {expected_uid}"
    return None


def _enclave_dirs(layout: KeystoreLayout) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for current, dirs, files in os.walk(layout.enclaves_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(current)
        if here != layout.enclaves_dir and (CERT in files or KEY in files):
            found.append(("/" + "/".join(here.relative_to(layout.enclaves_dir).parts), here))
    return found


def probe_key_modes(layout: KeystoreLayout, expected_uid: int) -> list[Finding]:
    """KEY_MODES: enclave key.pem 0600 (or stricter) owned by ``expected_uid``; CA keys and private/.

    CA key symlinks (single-CA keystores) must point to a key inside private/.  A host without
    private/ (a deployed keystore without CA keys) is OK for the "ca" subject.
    """
    findings: list[Finding] = []
    for path, directory in _enclave_dirs(layout):
        problem = _mode_problem(directory / KEY, expected_uid, 0o600, "key.pem")
        findings.append(Finding(checks.KEY_MODES, path, Level.ERROR if problem else Level.OK,
                                problem or "key.pem 0600, owned by the keystore owner", (("enclave", path),)))
    private = layout.private_dir
    if not os.path.lexists(private):
        findings.append(Finding(checks.KEY_MODES, CA_SUBJECT, Level.OK, "no CA keys on this host"))
        return findings
    problems = [p for p in [_mode_problem(private, expected_uid, 0o700, "private/")] if p]
    if not problems:
        base = os.path.realpath(private)
        for key in sorted(private.glob("*.key.pem")):
            if key.is_symlink():
                if os.path.dirname(os.path.realpath(key)) != base:
                    problems.append(f"private/{key.name} links outside private/")
                continue
            problem = _mode_problem(key, expected_uid, 0o600, f"private/{key.name}")
            if problem:
                problems.append(problem)
    findings.append(Finding(checks.KEY_MODES, CA_SUBJECT, Level.ERROR if problems else Level.OK,
                            "; ".join(problems) or "CA keys 0600 in a 0700 private/"))
    return findings


# --- integrity ----------------------------------------------------------------------------------

def _first(label: str, names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:_SHOW_FILES])
    more = f" and {len(names) - _SHOW_FILES} more" if len(names) > _SHOW_FILES else ""
    return f"{label}: {shown}{more}"


def probe_audit_log(layout: KeystoreLayout) -> list[Finding]:
    """AUDIT_LOG subject "keystore": the hash-chained, MACed audit log exists and verifies."""
    result = verify_audit_log(layout)
    values = (("records", str(result.records)),)
    if result.ok and result.records:
        return [Finding(checks.AUDIT_LOG, KEYSTORE_SUBJECT, Level.OK,
                        f"{result.records} audit records, hash chain and MACs verify", values)]
    where = f"line {result.first_bad}: " if result.first_bad else ""
    problem = result.problem or "no audit records"
    return [Finding(checks.AUDIT_LOG, KEYSTORE_SUBJECT, Level.ERROR, f"audit log: {where}{problem}",
                    values + (("evidence", "cobot-security audit-log verify"),))]


def probe_integrity(layout: KeystoreLayout, now: _dt.datetime | None = None) -> list[Finding]:
    """KEYSTORE_INTEGRITY: the signed manifest verifies and matches every public artifact.

    With ``now`` the permissions CA must be valid at that time (what the reporter asks); without
    it, at the time the manifest says it was created.
    """
    result = check_integrity(layout, at=now)
    parts: list[str] = []
    if result.problem:
        parts.append(result.problem)
    for label, names in (("modified", result.modified), ("missing", result.missing),
                         ("unexpected", result.unexpected)):
        if names:
            parts.append(_first(label, names))
    values = (("modified", str(len(result.modified))), ("missing", str(len(result.missing))),
              ("unexpected", str(len(result.unexpected))))
    if parts or not result.signature_ok:
        return [Finding(checks.KEYSTORE_INTEGRITY, KEYSTORE_SUBJECT, Level.ERROR,
                        "; ".join(parts) or "manifest signature does not verify", values)]
    return [Finding(checks.KEYSTORE_INTEGRITY, KEYSTORE_SUBJECT, Level.OK,
                    "keystore matches its signed manifest", values)]


# --- environment --------------------------------------------------------------------------------

def probe_security_env(environ: Mapping[str, str], keystore: Path, subject: str) -> list[Finding]:
    """SECURITY_ENV: ROS_SECURITY_ENABLE=true, STRATEGY=Enforce, KEYSTORE resolving to ``keystore``.

    A process on rclpy wheels without DDS Security, or one started without these variables, runs
    unprotected; this finding is where that gap shows.
    """
    problems: list[str] = []
    enable = environ.get("ROS_SECURITY_ENABLE")
    if enable != "true":
        problems.append(f"ROS_SECURITY_ENABLE: expected true, got {enable if enable is not None else 'unset'}")
    strategy = environ.get("ROS_SECURITY_STRATEGY")
    if strategy != "Enforce":
        problems.append(f"ROS_SECURITY_STRATEGY: expected Enforce, got "
                        f"{strategy if strategy is not None else 'unset (Permissive)'}")
    configured = environ.get("ROS_SECURITY_KEYSTORE")
    if not configured:
        problems.append("ROS_SECURITY_KEYSTORE: expected the keystore path, got unset")
    elif os.path.realpath(configured) != os.path.realpath(keystore):
        problems.append(f"ROS_SECURITY_KEYSTORE: expected {keystore}, got {configured}")
    values = (("ros_security_enable", enable or ""), ("ros_security_strategy", strategy or ""),
              ("ros_security_keystore", configured or ""))
    if problems:
        return [Finding(checks.SECURITY_ENV, subject, Level.ERROR, "; ".join(problems), values)]
    return [Finding(checks.SECURITY_ENV, subject, Level.OK, "DDS Security enabled and enforced", values)]


_OPEN_RANGES = ("SUBNET", "SYSTEM_DEFAULT")
_CLOSED_RANGES = ("LOCALHOST", "OFF")


def probe_discovery(environ: Mapping[str, str], policy: WorkcellPolicy, subject: str) -> list[Finding]:
    """DISCOVERY_EXPOSURE: the domain is the policy's and discovery is not open without need.

    Rule (ROS 2 Iron+ variables):

    * ERROR when ``ROS_DOMAIN_ID`` (default 0) is not an integer or not in ``policy.domain_ids``:
      the grants are not valid there, or the cell talks to a foreign domain.
    * OK when ``ROS_LOCALHOST_ONLY=1``, ``ROS_AUTOMATIC_DISCOVERY_RANGE`` is LOCALHOST or OFF, or
      ``ROS_STATIC_PEERS`` names the peers.
    * WARN when the range is unset, SUBNET or SYSTEM_DEFAULT with no static peers: every host on
      the subnet can discover the cell (an unrecognised range value is WARN too).
    """
    raw_domain = environ.get("ROS_DOMAIN_ID", "").strip()
    range_ = environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip().upper()
    peers = environ.get("ROS_STATIC_PEERS", "").strip()
    localhost_only = environ.get("ROS_LOCALHOST_ONLY", "").strip() == "1"
    values = (("domain_id", raw_domain or "0"), ("discovery_range", range_ or "unset"),
              ("static_peers", peers))

    def finding(level: Level, message: str) -> list[Finding]:
        return [Finding(checks.DISCOVERY_EXPOSURE, subject, level, message, values)]

    try:
        domain = int(raw_domain) if raw_domain else 0
    except ValueError:
        return finding(Level.ERROR, f"ROS_DOMAIN_ID: expected an integer, got {raw_domain!r}")
    if domain not in policy.domain_ids:
        allowed = ", ".join(str(d) for d in policy.domain_ids)
        return finding(Level.ERROR, f"ROS_DOMAIN_ID: expected one of {allowed} (the policy's), got {domain}")
    if localhost_only:
        return finding(Level.OK, "discovery limited to localhost (ROS_LOCALHOST_ONLY=1)")
    if range_ in _CLOSED_RANGES:
        return finding(Level.OK, f"discovery range {range_}")
    if peers:
        return finding(Level.OK, "discovery restricted to static peers")
    if range_ and range_ not in _OPEN_RANGES:
        return finding(Level.WARN, f"ROS_AUTOMATIC_DISCOVERY_RANGE: unrecognised value {range_!r}, "
                                   "discovery may be open to the subnet")
    return finding(Level.WARN, "discovery open to the whole subnet (no range limit, no static peers)")


# --- graph --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeFact:
    """A running node as the ROS graph reports it, with the enclave it was started in."""

    name: str
    namespace: str
    enclave: str

    @property
    def fqn(self) -> str:
        """Fully qualified node name."""
        return resolve_name(self.name, self.name, self.namespace or "/")


@dataclass(frozen=True)
class GraphFacts:
    """A snapshot of the ROS graph: nodes and (topic name, publishing node FQN) pairs."""

    nodes: tuple[NodeFact, ...] = ()
    publishers: tuple[tuple[str, str], ...] = ()


def _policy_enclave_of(policy: WorkcellPolicy, fqn: str) -> Enclave | None:
    for enclave in policy.enclaves:
        if any(node.fqn == fqn for node in enclave.nodes):
            return enclave
    return None


def probe_graph(graph: GraphFacts, policy: WorkcellPolicy) -> list[Finding]:
    """GRAPH_CONFORMANCE per node FQN: in the policy, in its enclave, publishing only granted topics.

    Hidden nodes (name starting with ``_``, e.g. the ros2cli daemon) are skipped.  Grants may use
    wildcards (matched with fnmatch on the DDS-mangled name); ``/rosout`` and ``/parameter_events``
    are ignored when the enclave has builtins.
    """
    findings: list[Finding] = []
    for node in sorted(set(graph.nodes), key=lambda n: (n.fqn, n.enclave)):
        if node.name.startswith("_"):
            continue
        fqn = node.fqn
        values = (("enclave", node.enclave),)
        enclave = _policy_enclave_of(policy, fqn)
        if enclave is None:
            findings.append(Finding(checks.GRAPH_CONFORMANCE, fqn, Level.ERROR,
                                    f"node {fqn} is not in the policy", values))
            continue
        if node.enclave != enclave.path:
            findings.append(Finding(checks.GRAPH_CONFORMANCE, fqn, Level.ERROR,
                                    f"enclave: expected {enclave.path}, got {node.enclave or 'none'}", values))
            continue
        granted = compute_dds_grants(enclave).publish
        ungranted = sorted({
            topic for topic, publisher in graph.publishers
            if publisher == fqn
            and not (enclave.builtins and topic in _BUILTIN_TOPICS)
            and not any(fnmatch.fnmatchcase(mangle_topic(topic), grant) for grant in granted)
        })
        if ungranted:
            findings.append(Finding(checks.GRAPH_CONFORMANCE, fqn, Level.ERROR,
                                    "publishes ungranted topics: " + ", ".join(ungranted), values))
        else:
            findings.append(Finding(checks.GRAPH_CONFORMANCE, fqn, Level.OK,
                                    "in its policy enclave, publishing granted topics only", values))
    return findings


# --- enforcement proof --------------------------------------------------------------------------

def probe_enforcement_proof(layout: KeystoreLayout, now: _dt.datetime, max_age_days: int = 7) -> list[Finding]:
    """ENFORCEMENT_PROOF: the last ``cobot-security verify`` passed within ``max_age_days``.

    No record or a failed run is ERROR; a passing run older than the limit is WARN.
    """
    record = read_verify_result(layout)
    if record is None:
        return [Finding(checks.ENFORCEMENT_PROOF, KEYSTORE_SUBJECT, Level.ERROR,
                        "no enforcement proof recorded: run cobot-security verify")]
    evidence = f"verify at {iso_utc(record.verified_at)}: {record.checks} checks, {record.failures} failures"
    values = (("evidence", evidence), ("domain_id", str(record.domain_id)))
    if not record.passed or record.failures:
        level, message = Level.ERROR, "last verify failed"
    elif now - record.verified_at > _dt.timedelta(days=max_age_days):
        level, message = Level.WARN, f"last verify older than {max_age_days} days"
    else:
        level, message = Level.OK, "enforcement proven recently"
    return [Finding(checks.ENFORCEMENT_PROOF, KEYSTORE_SUBJECT, level, f"{message} ({evidence})", values)]


# --- stored scans and network checks -----------------------------------------------------------

#: Which check a stored record of each kind speaks for (used for records that cannot be read).
_KIND_CHECKS = {"opcua": checks.OPCUA_ENDPOINTS, "services": checks.SERVICE_EXPOSURE,
                "network_check": checks.NETWORK_RULESET}
_SCAN_COMMANDS = {checks.OPCUA_ENDPOINTS: "cobot-security scan opcua", checks.SERVICE_EXPOSURE:
                  "cobot-security scan services"}
SCANS_SUBJECT = "scans"


def _aged(finding: Finding, scanned_at: _dt.datetime, now: _dt.datetime, max_age_days: int) -> Finding:
    age = now - scanned_at
    values = finding.values + (("scanned_at", iso_utc(scanned_at)), ("age_days", str(math.floor(age.total_seconds()
                                                                                           / 86400))))
    if age > _dt.timedelta(days=max_age_days):
        return Finding(finding.check, finding.subject, max(finding.level, Level.WARN),
                       f"{finding.message} (result from {iso_utc(scanned_at)}, older than {max_age_days} days)",
                       values)
    return Finding(finding.check, finding.subject, finding.level, finding.message, values)


def probe_stored_results(
    results_dir: Path, now: _dt.datetime, max_age_days: int = 7, network_check: Path | None = None
) -> list[Finding]:
    """Publish stored scan results (and the network check record, when present) with their age.

    Each stored finding keeps its level, raised to WARN when its scan is older than
    ``max_age_days``; an unreadable record is ERROR.  No stored OPC UA or service scan at all is an
    ERROR for that check (no evidence is a failure), naming the command that provides it.
    """
    findings: list[Finding] = []
    seen_checks: set[str] = set()
    records = list(read_scan_results(results_dir))
    if network_check is not None and network_check.exists():
        try:
            records.append((network_check, read_scan_record(network_check, "network_check", "checked_at")))
        except InputError as exc:
            records.append((network_check, exc))
    for path, record in records:
        if isinstance(record, Exception):
            kind = path.stem.split("-", 1)[0]
            check = _KIND_CHECKS.get(kind, checks.SERVICE_EXPOSURE)
            seen_checks.add(check)
            findings.append(Finding(check, path.name, Level.ERROR, f"stored result unreadable ({record})"))
            continue
        for finding in record.findings:
            seen_checks.add(finding.check)
            findings.append(_aged(finding, record.scanned_at, now, max_age_days))
        if not record.findings:
            check = _KIND_CHECKS.get(record.kind, checks.SERVICE_EXPOSURE)
            seen_checks.add(check)
            findings.append(Finding(check, record.target or path.name, Level.ERROR,
                                    "stored result holds no findings", (("scanned_at", iso_utc(record.scanned_at)),)))
    for check, command in _SCAN_COMMANDS.items():
        if check not in seen_checks:
            findings.append(Finding(check, SCANS_SUBJECT, Level.ERROR, f"no stored result: run {command}"))
    return findings
