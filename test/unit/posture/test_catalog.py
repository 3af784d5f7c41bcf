"""Controls catalog and attestations loading: the shipped files, and file:line:field errors."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from cobot_security.checks import ALL_CHECKS
from cobot_security.errors import InputError
from cobot_security.posture.attestations import (
    load_attestations,
    load_attestations_text,
)
from cobot_security.posture.catalog import Priority, load_controls, load_controls_text

REPO = Path(__file__).resolve().parents[3]

GOOD = """\
version: 1
controls:
  - id: per_node_identity
    title: "Per-node identity"
    priority: high
    references: ["IEC 62443-3-3 SR 1.2"]
    checks: [cert_expiry]
"""


def test_shipped_catalog_loads_with_exact_references() -> None:
    catalog = load_controls(REPO / "policies" / "posture_controls.yaml")
    ids = [c.id for c in catalog.controls]
    assert ids == [
        "network_segmentation", "strong_authentication", "encryption_in_transit", "software_integrity",
        "audit_logging", "patch_management", "physical_port_security", "incident_response",
        "per_node_identity", "per_node_authorization", "security_config_reporting",
    ]
    by_id = {c.id: c for c in catalog.controls}
    assert by_id["software_integrity"].references == ("IEC 62443-3-3 SR 3.4 software and information integrity",)
    assert "SR 3.2" in by_id["software_integrity"].description
    assert by_id["network_segmentation"].priority == Priority.CRITICAL
    assert by_id["incident_response"].attestations == ("incident_response_drill",)
    assert by_id["patch_management"].checks == ()
    assert by_id["strong_authentication"].attestations == ("hmi_mfa", "remote_access_mfa")
    for c in catalog.controls:
        assert set(c.checks) <= set(ALL_CHECKS)
        assert c.checks or c.attestations


def test_docs_crosswalk_lists_every_control() -> None:
    catalog = load_controls(REPO / "policies" / "posture_controls.yaml")
    text = (REPO / "docs" / "posture.md").read_text(encoding="utf-8")
    crosswalk = text.split("## Crosswalk", 1)[1]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z_]+)` \|.*$", crosswalk, re.M)}
    assert set(rows) == {c.id for c in catalog.controls}
    for c in catalog.controls:
        assert f"| {c.priority.value} |" in rows[c.id]
        for ref in c.references:
            assert ref in rows[c.id]


def test_shipped_attestations_show_honest_gaps() -> None:
    attestations = {a.id: a for a in load_attestations(REPO / "policies" / "attestations.yaml")}
    assert set(attestations) == {"usb_ports_locked", "patch_review", "hmi_mfa"}
    assert attestations["hmi_mfa"].expires < dt.date(2026, 11, 29)
    text = (REPO / "policies" / "attestations.yaml").read_text(encoding="utf-8")
    assert "EXAMPLE" in text.splitlines()[0]


def test_good_catalog_text() -> None:
    catalog = load_controls_text(GOOD, "c.yaml")
    assert catalog.version == 1
    assert catalog.controls[0].line == 3
    assert catalog.controls[0].status_name == "cobot_security/posture/per_node_identity"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (GOOD.replace("version: 1", "version: 2"), r"^c\.yaml:1: version: expected version 1, got 2$"),
        (GOOD + "    colour: red\n",
         r"^c\.yaml:8: controls\[0\]\.colour: expected one of the keys .*unknown key 'colour'"),
        (GOOD.replace("priority: high", "priority: urgent"),
         r"^c\.yaml:5: controls\[0\]\.priority: expected one of critical"),
        (GOOD.replace("[cert_expiry]", "[cert_expiry, nope]"),
         r"^c\.yaml:7: controls\[0\]\.checks\[1\]: expected a health check name"),
        (GOOD.replace("    checks: [cert_expiry]\n", ""),
         r"^c\.yaml:3: controls\[0\]: expected control 'per_node_identity' to list at least one check or attestation, got neither"),  # noqa: E501 (test data kept on one line)
        (GOOD.replace("    checks: [cert_expiry]\n", "    checks: []\n    attestations: []\n"),
         r"^c\.yaml:3: controls\[0\]: .*got neither"),
        (GOOD.replace("id: per_node_identity", "id: Per-Node"),
         r"^c\.yaml:3: controls\[0\]\.id: expected a snake_case"),
        (GOOD + GOOD.split("controls:\n", 1)[1],
         r"^c\.yaml:8: controls\[1\]\.id: expected each control id once \(first defined at line 3\)"),
        (GOOD.replace("    priority: high\n", "    priority: high\n    priority: low\n"),
         r"^c\.yaml:6: controls\[0\]\.priority: expected each key once \(first defined at line 5\)"),
        ("version: 1\ncontrols: []\n",
         r"^c\.yaml:2: controls: expected a non-empty list of controls, got an empty list"),
        ("", r"^c\.yaml:1: expected a catalog mapping"),
        (GOOD.replace('["IEC 62443-3-3 SR 1.2"]', "[]"),
         r"^c\.yaml:6: controls\[0\]\.references: expected at least one"),
        ("version: 1\ncontrols: [\n", r"^c\.yaml:\d+: expected valid YAML"),
    ],
)
def test_catalog_errors_name_file_line_field(text: str, pattern: str) -> None:
    with pytest.raises(InputError) as info:
        load_controls_text(text, "c.yaml")
    assert re.search(pattern, str(info.value)), str(info.value)
    assert info.value.exit_code == 2


def test_catalog_file_error_names_path(assets: Path) -> None:
    path = assets / "unknown_check.yaml"
    with pytest.raises(InputError, match=r"unknown_check\.yaml:7: controls\[0\]\.checks\[1\]: .*got 'no_such_check'"):
        load_controls(path)


def test_missing_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected a readable controls catalog"):
        load_controls(tmp_path / "absent.yaml")


ATT = """\
version: 1
attestations:
  - id: patch_review
    statement: "Reviewed"
    attested_by: "Someone"
    date: 2026-10-15
    expires: 2027-04-15
    evidence: "CHG-1"
"""


def test_good_attestations_text() -> None:
    (a,) = load_attestations_text(ATT, "a.yaml")
    assert a.date == dt.date(2026, 10, 15)
    assert a.expires_at == dt.datetime(2027, 4, 15, tzinfo=dt.timezone.utc)
    assert a.line == 3
    assert load_attestations_text("version: 1\nattestations: []\n", "a.yaml") == ()
    quoted = load_attestations_text(ATT.replace("2026-10-15", '"2026-10-15"'), "a.yaml")
    assert quoted[0].date == dt.date(2026, 10, 15)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (ATT.replace("2027-04-15", "2026-10-15"),
         r"^a\.yaml:7: attestations\[0\]\.expires: expected a date after the attestation date 2026-10-15, got 2026-10-15"),  # noqa: E501 (test data kept on one line)
        (ATT.replace("2026-10-15", "15/10/2026"), r"^a\.yaml:6: attestations\[0\]\.date: expected an ISO 8601 date"),
        (ATT.replace("2026-10-15", "2026-02-30"), r"^a\.yaml:6: attestations\[0\]\.date: expected an ISO 8601 date"),
        (ATT.replace("2026-10-15", "2026-10-15T10:00:00"),
         r"^a\.yaml:6: attestations\[0\]\.date: expected an ISO 8601 date"),
        (ATT.replace('    evidence: "CHG-1"\n', ""),
         r"^a\.yaml:3: attestations\[0\]\.evidence: expected a required key 'evidence'"),
        (ATT + "    signed: yes\n", r"^a\.yaml:9: attestations\[0\]\.signed: .*unknown key 'signed'"),
        (ATT + ATT.split("attestations:\n", 1)[1],
         r"^a\.yaml:9: attestations\[1\]\.id: expected each attestation id once \(first defined at line 3\)"),
        (ATT.replace("version: 1", "version: 3"), r"^a\.yaml:1: version: expected version 1, got 3"),
        (ATT.replace("version: 1\n", ""), r"^a\.yaml:\d+: version: expected a required key 'version'"),
    ],
)
def test_attestation_errors_name_file_line_field(text: str, pattern: str) -> None:
    with pytest.raises(InputError) as info:
        load_attestations_text(text, "a.yaml")
    assert re.search(pattern, str(info.value)), str(info.value)


def test_attestation_file_error(assets: Path) -> None:
    with pytest.raises(InputError,
                       match=r"expires_before_date\.yaml:7: attestations\[0\]\.expires: expected a date after"):
        load_attestations(assets / "expires_before_date.yaml")
