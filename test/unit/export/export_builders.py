"""Builders for export tests: a real PostureReport from evaluate_posture, findings, a Transition."""

from __future__ import annotations

import datetime as dt

from cobot_security.checks import CERT_EXPIRY, KEY_MODES, REPORTER_LIVENESS
from cobot_security.keystore.audit import AuditRecord
from cobot_security.posture.alerts import Transition, TransitionFilter
from cobot_security.posture.catalog import Control, ControlsCatalog, Priority
from cobot_security.posture.evaluate import PostureReport, evaluate_posture
from cobot_security.status import Finding, Level

NOW = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.timezone.utc)

CATALOG = ControlsCatalog(1, (
    Control("cert_lifetime", "Certificates valid", Priority.CRITICAL, ("IEC 62443-3-3 SR 1.2",), (CERT_EXPIRY,)),
    Control("key_protection", "Keys 0600", Priority.HIGH, ("IEC 62443-3-3 SR 1.5",), (KEY_MODES,)),
    Control("reporters_alive", "Reporters alive", Priority.MEDIUM, ("IEC 62443-3-3 SR 6.2",),
            (REPORTER_LIVENESS,)),
))


def cert(enclave: str, days: int, level: Level = Level.OK) -> Finding:
    """A cert_expiry finding for ``enclave`` with ``days`` left."""
    return Finding(CERT_EXPIRY, enclave, level, f"{days} days left",
                   (("enclave", enclave), ("days_left", str(days))))


def liveness(reporter: str, level: Level) -> Finding:
    """A reporter_liveness finding as the supervisor's tracker makes it."""
    return Finding(REPORTER_LIVENESS, reporter, level, "last report", (("reporter", reporter),))


def findings(cert_level: Level = Level.OK, keys: Level = Level.OK, stale: int = 0) -> list[Finding]:
    """Findings for the catalog: two enclaves' certificates, key modes, two reporters."""
    return [
        cert("/cell/arm", 40, cert_level), cert("/cell/arm", 12, cert_level), cert("/cell/gripper", 90),
        Finding(KEY_MODES, "/cell/arm", keys, "modes"),
        liveness("host/a", Level.STALE if stale >= 1 else Level.OK),
        liveness("host/b", Level.STALE if stale >= 2 else Level.OK),
    ]


def report(cert_level: Level = Level.OK, keys: Level = Level.OK, stale: int = 0) -> PostureReport:
    """The real evaluation of :data:`CATALOG` over :func:`findings`."""
    return evaluate_posture(CATALOG, findings(cert_level, keys, stale), (), NOW)


def transition(level: Level = Level.ERROR) -> Transition:
    """The first (previous None) transition of cert_lifetime at ``level``, from the real filter."""
    result = next(r for r in report(cert_level=level).results if r.control_id == "cert_lifetime")
    return TransitionFilter(confirm_count=1).update([result])[0]


def audit_record() -> AuditRecord:
    """An audit record as append_audit returns it."""
    return AuditRecord(seq=3, time="2026-11-29T12:00:00+00:00", event="revoke", subject="/cell/arm",
                       details={"serial": "0x1f", "reason": 'key "compromised"] \\ now'},
                       prev="a" * 64, mac="b" * 64)
