"""The audit-log probe: evidence for the audit logging control, ERROR on any tampering."""

from __future__ import annotations

from cobot_security import checks
from cobot_security.health.key_file_probes import probe_audit_log
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.status import Level


def test_fresh_keystore_has_a_verifying_audit_log(layout: KeystoreLayout) -> None:
    (finding,) = probe_audit_log(layout)

    assert finding.check == checks.AUDIT_LOG
    assert finding.level is Level.OK
    assert int(finding.value("records") or 0) >= 1


def test_edited_record_is_an_error_naming_the_line(layout: KeystoreLayout) -> None:
    log = layout.audit_log
    lines = log.read_text().splitlines()
    lines[0] = lines[0].replace('"init"', '"issue"')
    log.write_text("\n".join(lines) + "\n")

    (finding,) = probe_audit_log(layout)

    assert finding.level is Level.ERROR
    assert "line 1" in finding.message


def test_missing_log_is_an_error(layout: KeystoreLayout) -> None:
    layout.audit_log.unlink()

    (finding,) = probe_audit_log(layout)

    assert finding.level is Level.ERROR
