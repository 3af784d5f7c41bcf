"""Evidence probes: the recorded enforcement proof and the stored scan / network check results, with their age."""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

from cobot_security import checks
from cobot_security.clock import iso_utc
from cobot_security.errors import InputError
from cobot_security.health.probe import KEYSTORE_SUBJECT
from cobot_security.keystore.evidence import read_verify_results
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.scan.results import read_scan_record, read_scan_results
from cobot_security.status import Finding, Level


def probe_enforcement_proof(layout: KeystoreLayout, now: _dt.datetime, max_age_days: int = 7,
                            required: tuple[str, ...] = ("cyclonedds",)) -> list[Finding]:
    """ENFORCEMENT_PROOF: the last ``cobot-security verify`` passed within ``max_age_days`` on every
    ``required`` middleware (the policy's ``middlewares``).

    A required middleware never proven, or whose last run failed, is ERROR; one proven longer ago
    than the limit is WARN.  Each middleware's proof (result and time) is a value of the finding.
    """
    records = read_verify_results(layout)
    values = [("middlewares_required", ",".join(required))]
    missing, failed, stale = [], [], []
    for name in sorted(set(required) | set(records), key=lambda n: (n not in required, n)):
        record = records.get(name)
        if record is None:
            missing.append(name)
            values.append((f"proof_{name}", "none"))
            continue
        ok = record.passed and not record.failures
        values.append((f"proof_{name}", f"{'PASS' if ok else 'FAIL'} at {iso_utc(record.verified_at)}: {record.checks} "
                                        f"checks, {record.failures} failures, domain {record.domain_id}"))
        if name in required and not ok:
            failed.append(name)
        elif name in required and now - record.verified_at > _dt.timedelta(days=max_age_days):
            stale.append(name)
    proven = [n for n in required if n not in missing + failed + stale]
    values.append(("evidence", "; ".join(
        f"{name}: " + (f"verify at {iso_utc(records[name].verified_at)}: {records[name].checks} checks, "
                       f"{records[name].failures} failures" if name in records else "never verified")
        for name in required)))
    if missing or failed:
        parts = ([f"no proof on {', '.join(missing)}"] if missing else []) + (
            [f"last verify failed on {', '.join(failed)}"] if failed else [])
        level, message = Level.ERROR, "; ".join(parts) + ": run cobot-security verify"
    elif stale:
        level, message = Level.WARN, f"last verify older than {max_age_days} days on {', '.join(stale)}"
    else:
        level, message = Level.OK, "enforcement proven recently on " + ", ".join(proven)
    return [Finding(checks.ENFORCEMENT_PROOF, KEYSTORE_SUBJECT, level, message, tuple(values))]


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
