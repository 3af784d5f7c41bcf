"""Keystore file probes: key file modes (KEY_MODES), the signed manifest (KEYSTORE_INTEGRITY), the audit log."""

from __future__ import annotations

import datetime as _dt
import os
import stat
from pathlib import Path

from cobot_security import checks
from cobot_security.health.probe import CA_SUBJECT, KEYSTORE_SUBJECT
from cobot_security.keystore.audit import verify_audit_log
from cobot_security.keystore.enclaves import enclave_dirs_holding
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.layout import CERT, KEY, KeystoreLayout
from cobot_security.status import Finding, Level

#: How many file names an integrity finding lists before "... and N more".
_SHOW_FILES = 3


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


def probe_key_modes(layout: KeystoreLayout, expected_uid: int) -> list[Finding]:
    """KEY_MODES: enclave key.pem 0600 (or stricter) owned by ``expected_uid``; CA keys and private/.

    CA key symlinks (single-CA keystores) must point to a key inside private/.  A host without
    private/ (a deployed keystore without CA keys) is OK for the "ca" subject.
    """
    findings: list[Finding] = []
    for path, directory in enclave_dirs_holding(layout, frozenset((CERT, KEY))).items():
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
    has_keys = any(private.glob("*.key.pem")) if not problems else True
    findings.append(Finding(checks.KEY_MODES, CA_SUBJECT, Level.ERROR if problems else Level.OK,
                            "; ".join(problems) or ("CA keys 0600 in a 0700 private/" if has_keys
                                                    else "no CA keys on this host (private/ 0700)")))
    return findings


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
