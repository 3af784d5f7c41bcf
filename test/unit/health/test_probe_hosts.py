"""host_assignment on a member host: its own enclaves, all of them, no CA key; the other probes scoped to it."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

from cobot_security import checks
from cobot_security.health.host_probes import keystore_scope, probe_host_assignment
from cobot_security.health.reporter import ReporterConfig, collect_findings
from cobot_security.keystore.host_authority import bundle_host
from cobot_security.keystore.host_install import install_package
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import Host, WorkcellPolicy
from cobot_security.status import Level

ISSUED = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def hosts_policy(policy_factory) -> WorkcellPolicy:
    base = policy_factory("/cell/arm", "/cell/camera")
    hosts = {"/cell/arm": ("cell_pc",), "/cell/camera": ("vision_pc",)}
    return replace(base, hosts=(Host("ca_pc", "authority"), Host("cell_pc"), Host("vision_pc")),
                   enclaves=tuple(replace(e, hosts=hosts[e.path]) for e in base.enclaves))


@pytest.fixture
def member(tmp_path: Path, hosts_policy: WorkcellPolicy) -> tuple[KeystoreLayout, KeystoreLayout]:
    """(CA keystore, cell_pc's host keystore installed from a bundle)."""
    ca = init_keystore(tmp_path / "ca", hosts_policy, ISSUED)
    pinned = ca.layout.permissions_ca_cert
    install_package(Keystore.open_host(tmp_path / "cell_pc"), bundle_host(ca, hosts_policy, "cell_pc", ISSUED).document,
                    x509.load_pem_x509_certificate(pinned.read_bytes()), pinned, ISSUED, source="b", host="cell_pc")
    return ca.layout, KeystoreLayout(tmp_path / "cell_pc")


def _levels(findings: list) -> dict[str, Level]:
    return {f.subject: f.level for f in findings}


def test_a_member_keystore_is_ok_and_scopes_the_probes(member, hosts_policy: WorkcellPolicy) -> None:
    _ca, layout = member
    assert _levels(probe_host_assignment(layout, hosts_policy, "whatever")) == {"keystore": Level.OK}
    assert [e.path for e in keystore_scope(layout, hosts_policy, "whatever").enclaves] == ["/cell/arm"]
    config = ReporterConfig(keystore=layout.root, policy=hosts_policy, expected_uid=os.getuid(), host="cell_pc")
    found = collect_findings(config, ISSUED + dt.timedelta(hours=2), {}, None)
    keystore_checks = (checks.CERT_EXPIRY, checks.PERMISSIONS_VALIDITY, checks.KEYSTORE_INTEGRITY,
                       checks.HOST_ASSIGNMENT, checks.GOVERNANCE, checks.CRL)
    assert [(f.name, f.message) for f in found if f.check in keystore_checks and f.level != Level.OK] == []
    assert {f.subject for f in found if f.check == checks.CERT_EXPIRY} == {"/cell/arm"}  # not vision_pc's


def test_ca_key_foreign_enclave_and_missing_enclave_are_errors(member, hosts_policy: WorkcellPolicy) -> None:
    ca, layout = member
    shutil.copyfile(ca.identity_ca_key, layout.private_dir / "identity_ca.key.pem")
    shutil.copytree(ca.enclave_dir("/cell/camera"), layout.enclave_dir("/cell/camera"), symlinks=True)
    (layout.enclave_dir("/cell/arm") / "key.pem").unlink()

    findings = {f.subject: f for f in probe_host_assignment(layout, hosts_policy, "cell_pc")}

    assert {s: f.level for s, f in findings.items()} == {"ca": Level.ERROR, "/cell/camera": Level.ERROR,
                                                          "/cell/arm": Level.ERROR}
    assert "CA private key on member host cell_pc: private/identity_ca.key.pem" in findings["ca"].message
    assert "not assigned to host cell_pc (it runs on vision_pc)" in findings["/cell/camera"].message
    assert "assigned to host cell_pc but its certificate or key is missing" in findings["/cell/arm"].message


def test_the_whole_ca_keystore_copied_to_a_member_host(member, hosts_policy: WorkcellPolicy) -> None:
    ca, _layout = member  # "the easy path": the CA machine's keystore on cell_pc
    findings = _levels(probe_host_assignment(ca, hosts_policy, "cell_pc"))
    assert findings == {"ca": Level.ERROR, "/cell/camera": Level.ERROR}
    assert _levels(probe_host_assignment(ca, hosts_policy, "ca_pc")) == {"keystore": Level.OK}
    assert _levels(probe_host_assignment(ca, replace(hosts_policy, hosts=()), "ca_pc")) == {"keystore": Level.OK}


def test_a_keystore_of_another_host_is_an_error(member, hosts_policy: WorkcellPolicy) -> None:
    _ca, layout = member
    finding = probe_host_assignment(layout, hosts_policy, "vision_pc")[0]
    assert finding.level == Level.ERROR
    assert finding.message == "the keystore is host cell_pc's, but this reporter runs as host vision_pc"
