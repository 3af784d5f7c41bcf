"""Loaded policies compile to permissions / governance XML that the sros2 (OMG) schemas accept.

The golden files under test/assets/golden were generated once from
test/assets/policies/minimal.yaml with validity 2026-11-29T12:00:00Z + 90 days and reviewed by
hand; any byte change in the compilers' output must be deliberate and update them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from cobot_security.policy.governance import compile_governance
from cobot_security.policy.load import load_policy
from cobot_security.policy.permissions import compile_permissions

NOT_BEFORE = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.timezone.utc)
NOT_AFTER = NOT_BEFORE + dt.timedelta(days=90)


def _schema(oracles: Path, name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(oracles / "schemas" / name)))


def test_example_enclaves_compile_to_valid_permissions(
    example_policy_path: Path, oracles: Path, fixed_now: dt.datetime
) -> None:
    schema = _schema(oracles, "permissions.xsd")
    policy = load_policy(example_policy_path)
    assert len(policy.enclaves) >= 9
    for enclave in policy.enclaves:
        data = compile_permissions(policy, enclave, fixed_now, fixed_now + policy.lifetimes.enclave_duration)
        document = etree.fromstring(data)
        assert schema.validate(document), (enclave.path, schema.error_log)
        assert document.findtext("permissions/grant/subject_name") == f"CN={enclave.path}"
        assert [d.text for d in document.iter("id")] == ["42"]


def test_example_governance_is_valid(example_policy_path: Path, oracles: Path) -> None:
    schema = _schema(oracles, "governance.xsd")
    document = etree.fromstring(compile_governance(load_policy(example_policy_path)))
    assert schema.validate(document), schema.error_log
    assert document.findtext(".//data_protection_kind") == "ENCRYPT"
    assert document.findtext(".//allow_unauthenticated_participants") == "false"


def test_weak_governance_is_still_valid(policy_assets: Path, oracles: Path) -> None:
    schema = _schema(oracles, "governance.xsd")
    document = etree.fromstring(compile_governance(load_policy(policy_assets / "weak.yaml")))
    assert schema.validate(document), schema.error_log
    assert document.findtext(".//rtps_protection_kind") == "SIGN"
    assert document.findtext(".//data_protection_kind") == "NONE"


@pytest.mark.parametrize("enclave_path", ["/demo/talker", "/demo/listener"])
def test_minimal_permissions_match_golden(policy_assets: Path, golden_dir: Path, enclave_path: str) -> None:
    policy = load_policy(policy_assets / "minimal.yaml")
    enclave = policy.enclave(enclave_path)
    assert enclave is not None
    compiled = compile_permissions(policy, enclave, NOT_BEFORE, NOT_AFTER)
    golden = golden_dir / f"minimal{enclave_path.replace('/', '_')}.permissions.xml"
    assert compiled == golden.read_bytes()


def test_minimal_governance_matches_golden(policy_assets: Path, golden_dir: Path) -> None:
    compiled = compile_governance(load_policy(policy_assets / "minimal.yaml"))
    assert compiled == (golden_dir / "minimal.governance.xml").read_bytes()


def test_golden_files_validate(golden_dir: Path, oracles: Path) -> None:
    permissions = _schema(oracles, "permissions.xsd")
    governance = _schema(oracles, "governance.xsd")
    for path in sorted(golden_dir.glob("*.permissions.xml")):
        assert permissions.validate(etree.parse(str(path))), (path, permissions.error_log)
    assert governance.validate(etree.parse(str(golden_dir / "minimal.governance.xml")))
