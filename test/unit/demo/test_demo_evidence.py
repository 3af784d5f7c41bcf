"""The demo's own evidence: marked demo attestations, and an honest network finding without root."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cobot_security import checks
from cobot_security.demo import evidence
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.network.check import read_network_check
from cobot_security.posture.attestations import load_attestations_text
from cobot_security.resources import shipped_file
from cobot_security.status import Level

TODAY = dt.date(2026, 12, 1)


def test_every_demo_attestation_says_it_is_a_demo_statement(tmp_path: Path) -> None:
    path = evidence.write_demo_attestations(tmp_path / "demo.yaml", shipped_file("policies/posture_controls.yaml"),
                                            TODAY)
    entries = load_attestations_text(path.read_text(), str(path))
    assert {a.id for a in entries} == {"zone_conduit_review", "hmi_mfa", "remote_access_mfa", "firmware_signatures",
                                       "patch_review", "usb_ports_locked", "incident_response_drill"}
    for entry in entries:
        assert entry.statement.startswith("DEMO STATEMENT, not evidence:")
        assert entry.attested_by.startswith("DEMO ") and entry.evidence.startswith("DEMO STATEMENT")
        assert entry.date == TODAY and entry.expires == TODAY + dt.timedelta(days=365)
    assert path.read_text().startswith("# DEMO STATEMENT, not evidence.")


def test_without_root_the_network_finding_says_why_and_stays_red(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence, "namespaces_unavailable", lambda: "network namespaces need root on Linux")
    layout = KeystoreLayout(tmp_path / "ks")
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)
    finding = evidence.prove_network(shipped_file("policies/network.yaml"), (42,), layout, now)
    assert (finding.check, finding.level) == (checks.NETWORK_RULESET, Level.ERROR)
    assert finding.message.startswith("not proven here: network namespaces need root on Linux; run the demo as root")
    record = read_network_check(layout.network_check)
    assert record.findings[0].message == finding.message and record.checked_at == now
