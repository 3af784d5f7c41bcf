"""Keystore probes: permissions, governance, CRL, key modes, integrity and the enforcement proof."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from cobot_security import checks
from cobot_security.health.certificate_probes import probe_crl
from cobot_security.health.evidence_probes import probe_enforcement_proof
from cobot_security.health.key_file_probes import probe_integrity, probe_key_modes
from cobot_security.health.signed_document_probes import probe_governance, probe_permissions
from cobot_security.keystore import pki
from cobot_security.keystore.evidence import record_verify_result
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.store import init_keystore
from cobot_security.policy.model import GovernanceOptions, Protection, WorkcellPolicy
from cobot_security.status import Finding, Level

SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)
Factory = Callable[..., KeystoreLayout]


def one(findings: list[Finding], subject: str) -> Finding:
    matches = [f for f in findings if f.subject == subject]
    assert len(matches) == 1, findings
    return matches[0]


# --- permissions --------------------------------------------------------------------------------

def test_permissions_ok(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    found = probe_permissions(layout, policy, issued)
    assert [(f.check, f.subject, f.level) for f in found] == [
        (checks.PERMISSIONS_VALIDITY, "/cell/arm_driver", Level.OK),
        (checks.PERMISSIONS_VALIDITY, "/gripper", Level.OK),
    ]
    assert found[1].value("not_after") == "2027-02-27T12:00:00+00:00"


@pytest.mark.parametrize(("offset", "level"), [(-SECOND, Level.OK), (dt.timedelta(0), Level.OK),
                                               (SECOND, Level.ERROR)])
def test_permissions_validity_end(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime,
                                  offset: dt.timedelta, level: Level) -> None:
    finding = one(probe_permissions(layout, policy, issued + 90 * DAY + offset), "/gripper")
    assert finding.level == level, finding.message


def test_permissions_before_validity(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    finding = one(probe_permissions(layout, policy, issued - dt.timedelta(hours=1) - SECOND), "/gripper")
    assert finding.level == Level.ERROR


def test_permissions_xml_edited(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    path = layout.enclave_dir("/gripper") / "permissions.xml"
    path.write_bytes(path.read_bytes().replace(b"DENY", b"ALLOW"))
    finding = one(probe_permissions(layout, policy, issued), "/gripper")
    assert finding.level == Level.ERROR
    assert "differs from permissions.xml" in finding.message


def test_permissions_foreign_signature(build_keystore: Factory, layout: KeystoreLayout, policy: WorkcellPolicy,
                                       issued: dt.datetime) -> None:
    foreign = build_keystore(policy)
    for name in ("permissions.p7s", "permissions.xml"):
        shutil.copy(foreign.enclave_dir("/gripper") / name, layout.enclave_dir("/gripper") / name)
    finding = one(probe_permissions(layout, policy, issued), "/gripper")
    assert finding.level == Level.ERROR
    assert "does not verify" in finding.message


def test_permissions_subject_mismatch(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    shutil.copy(layout.enclave_dir("/cell/arm_driver") / "cert.pem", layout.enclave_dir("/gripper") / "cert.pem")
    finding = one(probe_permissions(layout, policy, issued), "/gripper")
    assert finding.level == Level.ERROR
    assert "does not match the certificate" in finding.message


def test_permissions_policy_changed_warns(layout: KeystoreLayout, policy: WorkcellPolicy,
                                          policy_factory: Callable[..., WorkcellPolicy], issued: dt.datetime) -> None:
    changed = policy_factory("/cell/arm_driver", "/gripper", publish=("status", "extra"))
    finding = one(probe_permissions(layout, changed, issued), "/gripper")
    assert finding.level == Level.WARN
    assert "policy changed, re-issue" in finding.message


def test_permissions_missing_files(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    (layout.enclave_dir("/gripper") / "permissions.p7s").unlink()
    assert one(probe_permissions(layout, policy, issued), "/gripper").level == Level.ERROR


# --- governance ---------------------------------------------------------------------------------

def test_governance_ok(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    for finding in (probe_governance(layout, policy), probe_governance(layout, policy, now=issued)):
        assert [(f.check, f.subject, f.level) for f in finding] == [(checks.GOVERNANCE, "keystore", Level.OK)]


@pytest.mark.parametrize("weak", [
    GovernanceOptions(data_protection=Protection.SIGN),
    GovernanceOptions(rtps_protection=Protection.NONE),
    GovernanceOptions(discovery_protection=Protection.SIGN),
    GovernanceOptions(allow_unauthenticated_participants=True),
    GovernanceOptions(enable_write_access_control=False),
])
def test_governance_weaker_than_policy(build_keystore: Factory, policy: WorkcellPolicy,
                                       weak: GovernanceOptions) -> None:
    layout = build_keystore(dataclasses.replace(policy, governance=weak))
    finding = probe_governance(layout, policy)[0]
    assert finding.level == Level.ERROR
    assert "governance weaker than the policy" in finding.message


def test_governance_stronger_than_policy_is_ok(layout: KeystoreLayout, policy: WorkcellPolicy) -> None:
    lax = dataclasses.replace(policy, governance=GovernanceOptions(
        data_protection=Protection.SIGN, rtps_protection=Protection.NONE, allow_unauthenticated_participants=True))
    assert probe_governance(layout, lax)[0].level == Level.OK


def test_governance_signature_checked(build_keystore: Factory, layout: KeystoreLayout,
                                      policy: WorkcellPolicy) -> None:
    foreign = build_keystore(policy)
    shutil.copy(foreign.governance_p7s, layout.governance_p7s)
    finding = probe_governance(layout, policy)[0]
    assert finding.level == Level.ERROR
    assert "does not verify" in finding.message


# --- CRL ----------------------------------------------------------------------------------------

def write_crl(layout: KeystoreLayout, last: dt.datetime, next_: dt.datetime, *,
              signer: KeystoreLayout | None = None, where: str = "public") -> None:
    signer = signer or layout
    ca = pki.load_certificate(signer.identity_ca_cert.read_bytes(), signer.identity_ca_cert)
    key = pki.load_private_key(signer.identity_ca_key.read_bytes(), None, signer.identity_ca_key)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
           .last_update(last).next_update(next_).sign(key, hashes.SHA256()))
    target = layout.public_dir if where == "public" else layout.enclave_dir(where)
    if (target / "crl.pem").is_symlink():
        (target / "crl.pem").unlink()  # init links every enclave's crl.pem to public/: replace, not write through
    (target / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))


def test_no_crl_warns(layout: KeystoreLayout, issued: dt.datetime) -> None:
    layout.crl.unlink()  # init writes an empty CRL; the enclaves' crl.pem links now dangle
    found = probe_crl(layout, issued)
    assert [(f.check, f.subject, f.level, f.message) for f in found] == [
        (checks.CRL, "keystore", Level.WARN, "no CRL: revocation not possible")]


@pytest.mark.parametrize(("offset", "level"), [
    (-DAY - SECOND, Level.OK), (-DAY, Level.WARN), (-SECOND, Level.WARN), (dt.timedelta(0), Level.ERROR),
    (SECOND, Level.ERROR),
])
def test_crl_next_update_boundaries(layout: KeystoreLayout, issued: dt.datetime,
                                    offset: dt.timedelta, level: Level) -> None:
    next_update = issued + 7 * DAY
    write_crl(layout, issued, next_update)
    finding = probe_crl(layout, next_update + offset)[0]
    assert finding.level == level, finding.message
    assert finding.value("next_update") == "2026-12-06T12:00:00+00:00"


def test_crl_in_enclave_dir_foreign_signer(build_keystore: Factory, layout: KeystoreLayout,
                                           policy: WorkcellPolicy, issued: dt.datetime) -> None:
    write_crl(layout, issued, issued + 7 * DAY, signer=build_keystore(policy), where="/gripper")
    finding = probe_crl(layout, issued)[0]
    assert finding.level == Level.ERROR
    assert finding.message == "enclaves/gripper/crl.pem: not signed by the identity CA"


def test_crl_garbage(layout: KeystoreLayout, issued: dt.datetime) -> None:
    (layout.public_dir / "crl.pem").write_bytes(b"junk")
    assert probe_crl(layout, issued)[0].level == Level.ERROR


# --- key modes ----------------------------------------------------------------------------------

def test_key_modes_ok(layout: KeystoreLayout) -> None:
    found = probe_key_modes(layout, os.getuid())
    assert [(f.check, f.subject, f.level) for f in found] == [
        (checks.KEY_MODES, "/cell/arm_driver", Level.OK),
        (checks.KEY_MODES, "/gripper", Level.OK),
        (checks.KEY_MODES, "ca", Level.OK),
    ]


def test_enclave_key_0644(layout: KeystoreLayout) -> None:
    os.chmod(layout.enclave_dir("/gripper") / "key.pem", 0o644)
    finding = one(probe_key_modes(layout, os.getuid()), "/gripper")
    assert finding.level == Level.ERROR
    assert finding.message == "key.pem mode 0644, expected 0600 or stricter"


def test_wrong_owner(layout: KeystoreLayout) -> None:
    found = probe_key_modes(layout, os.getuid() + 1)
    assert {f.level for f in found} == {Level.ERROR}
    assert "owned by uid" in one(found, "/gripper").message


def test_ca_key_and_private_dir_modes(layout: KeystoreLayout) -> None:
    os.chmod(layout.identity_ca_key, 0o640)
    assert "identity_ca.key.pem mode 0640" in one(probe_key_modes(layout, os.getuid()), "ca").message
    os.chmod(layout.private_dir, 0o755)
    finding = one(probe_key_modes(layout, os.getuid()), "ca")
    assert finding.level == Level.ERROR
    assert "private/ mode 0755" in finding.message


def test_no_private_dir_is_ok(layout: KeystoreLayout) -> None:
    shutil.rmtree(layout.private_dir)
    assert one(probe_key_modes(layout, os.getuid()), "ca").level == Level.OK


# --- integrity ----------------------------------------------------------------------------------

def test_integrity_ok(layout: KeystoreLayout) -> None:
    found = probe_integrity(layout)
    assert [(f.check, f.subject, f.level) for f in found] == [(checks.KEYSTORE_INTEGRITY, "keystore", Level.OK)]


def test_integrity_names_files(layout: KeystoreLayout) -> None:
    (layout.enclave_dir("/gripper") / "permissions.xml").write_bytes(b"<x/>")
    (layout.enclave_dir("/gripper") / "cert.pem").unlink()
    for name in "abcde":
        (layout.public_dir / name).write_bytes(b"")
    finding = probe_integrity(layout)[0]
    assert finding.level == Level.ERROR
    assert finding.message == ("modified: enclaves/gripper/permissions.xml; missing: enclaves/gripper/cert.pem; "
                               "unexpected: public/a, public/b, public/c and 2 more")


def test_integrity_bad_signature_and_no_manifest(layout: KeystoreLayout) -> None:
    layout.integrity_json.write_text("{}")
    assert probe_integrity(layout)[0].level == Level.ERROR
    layout.integrity_p7s.unlink()
    finding = probe_integrity(layout)[0]
    assert finding.level == Level.ERROR
    assert "no integrity manifest" in finding.message


# --- enforcement proof --------------------------------------------------------------------------

def test_proof_missing(layout: KeystoreLayout, issued: dt.datetime) -> None:
    finding = probe_enforcement_proof(layout, issued)[0]
    assert (finding.check, finding.subject, finding.level) == (checks.ENFORCEMENT_PROOF, "keystore", Level.ERROR)


def test_proof_failed(layout: KeystoreLayout, issued: dt.datetime) -> None:
    record_verify_result(layout, passed=False, checks=20, failures=1, domain_id=0, now=issued)
    finding = probe_enforcement_proof(layout, issued)[0]
    assert finding.level == Level.ERROR
    assert finding.value("evidence") == "cyclonedds: verify at 2026-11-29T12:00:00+00:00: 20 checks, 1 failures"


@pytest.mark.parametrize(("age", "level"), [(7 * DAY - SECOND, Level.OK), (7 * DAY, Level.OK),
                                            (7 * DAY + SECOND, Level.WARN)])
def test_proof_age(layout: KeystoreLayout, issued: dt.datetime, age: dt.timedelta, level: Level) -> None:
    record_verify_result(layout, passed=True, checks=20, failures=0, domain_id=0, now=issued)
    assert probe_enforcement_proof(layout, issued + age)[0].level == level
    assert probe_enforcement_proof(layout, issued + age, max_age_days=30)[0].level == Level.OK


def test_proof_required_on_every_configured_middleware(layout: KeystoreLayout, issued: dt.datetime) -> None:
    required = ("cyclonedds", "fastdds", "zenoh")
    record_verify_result(layout, passed=True, checks=20, failures=0, domain_id=0, now=issued)
    record_verify_result(layout, passed=True, checks=15, failures=0, domain_id=0, now=issued, middleware="zenoh")
    finding = probe_enforcement_proof(layout, issued, required=required)[0]
    assert finding.level == Level.ERROR
    assert finding.message == "no proof on fastdds: run cobot-security verify"
    assert finding.value("proof_fastdds") == "none"
    assert finding.value("proof_zenoh") == "PASS at 2026-11-29T12:00:00+00:00: 15 checks, 0 failures, domain 0"
    record_verify_result(layout, passed=True, checks=20, failures=0, domain_id=0, now=issued + 8 * DAY,
                         middleware="fastdds")
    later = probe_enforcement_proof(layout, issued + 8 * DAY, required=required)[0]
    assert later.level == Level.WARN and later.message.endswith("on cyclonedds, zenoh")
    fresh = probe_enforcement_proof(layout, issued + 8 * DAY, required=("fastdds",))[0]
    assert fresh.level == Level.OK and fresh.message == "enforcement proven recently on fastdds"
    # A middleware the cell does not run is shown, but does not count.
    assert str(fresh.value("proof_zenoh")).startswith("PASS")


def test_key_modes_single_ca(build_keystore: Factory, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    layout = KeystoreLayout(build_keystore(policy).root.with_name("single"))
    init_keystore(layout.root, policy, issued, single_ca=True)
    assert one(probe_key_modes(layout, os.getuid()), "ca").level == Level.OK
    os.chmod(layout.single_ca_key, 0o644)
    assert "private/ca.key.pem mode 0644" in one(probe_key_modes(layout, os.getuid()), "ca").message
