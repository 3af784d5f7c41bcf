"""Host keystores end to end (no ROS): enrollment, bundles, renewal and CRL answers, revocation."""

from __future__ import annotations

import datetime as dt
import os
import stat
from dataclasses import replace
from pathlib import Path

from host_cell import Cell, make_cell, tree_state

from cobot_security.keystore import pki
from cobot_security.keystore.host_authority import answer_request, bundle_host
from cobot_security.keystore.host_documents import parse_request
from cobot_security.keystore.host_member import make_crl_request, make_renewal_request, plan_member
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.manifest import read_manifest
from cobot_security.keystore.revocation import load_crl, refresh_crl, revoke_enclave
from cobot_security.policy.model import WorkcellPolicy

DAY = dt.timedelta(days=1)


def _key_matches(layout, path: str) -> bool:
    directory = layout.enclave_dir(path)
    key = pki.load_private_key((directory / "key.pem").read_bytes(), None, directory / "key.pem")
    return pki.key_matches_certificate(key, pki.load_certificate((directory / "cert.pem").read_bytes(), directory))


def test_enrollment_keys_never_leave_the_host(tmp_path: Path, host_policy: WorkcellPolicy,
                                              fixed_now: dt.datetime) -> None:
    cell = make_cell(tmp_path, host_policy, fixed_now)
    result = cell.enroll("cell_pc", fixed_now)
    layout = cell.layout("cell_pc")

    assert result.changed == ("/cell/arm", "/shared") and result.kind == "enrollment"
    assert sorted(read_manifest(layout).enclaves) == ["/cell/arm", "/shared"]
    assert {r.key_origin for r in read_manifest(layout).enclaves.values()} == {"host"}
    for path in ("/cell/arm", "/shared"):
        assert _key_matches(layout, path)
        assert stat.S_IMODE(os.stat(layout.enclave_dir(path) / "key.pem").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(layout.enclave_dir(path)).st_mode) == 0o700
        # The CA machine holds the certificate it issued, never the host's key.
        view = cell.ca.layout.host_view("cell_pc") / "enclaves" / path.strip("/")
        assert (view / "cert.pem").read_bytes() == (layout.enclave_dir(path) / "cert.pem").read_bytes()
        assert not (view / "key.pem").exists()
    assert not any(layout.pending_dir.iterdir())  # pending keys moved into their enclaves
    assert not (layout.enclaves_dir / "cell" / "camera").exists()  # vision_pc's enclave is not here
    assert not os.path.lexists(layout.identity_ca_key) and not os.path.lexists(layout.permissions_ca_key)
    integrity = check_integrity(layout, at=fixed_now)
    assert integrity.ok and integrity.host == "cell_pc"


def test_bundle_marks_keys_made_on_the_ca_machine_and_reinstall_changes_nothing(
        tmp_path: Path, host_policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    cell = make_cell(tmp_path, host_policy, fixed_now)
    first = cell.bundle("vision_pc", fixed_now)
    layout = cell.layout("vision_pc")
    before = tree_state(layout.root / "enclaves")

    again = cell.bundle("vision_pc", fixed_now + DAY)

    assert first.changed == ("/cell/camera", "/shared")
    assert again.changed == () and again.files_written == 0
    assert tree_state(layout.root / "enclaves") == before  # same inodes: nothing was rewritten
    assert {r.key_origin for r in read_manifest(layout).enclaves.values()} == {"keystore"}
    assert check_integrity(layout, at=fixed_now).ok


def test_a_bundle_keeps_keys_born_on_the_host(cell_with_hosts: Cell, fixed_now: dt.datetime) -> None:
    layout = cell_with_hosts.layout("cell_pc")
    keys = {p: (layout.enclave_dir(p) / "key.pem").read_bytes() for p in ("/cell/arm", "/shared")}
    package = bundle_host(cell_with_hosts.ca, cell_with_hosts.policy, "cell_pc", fixed_now + DAY).package

    result = cell_with_hosts.bundle("cell_pc", fixed_now + DAY)

    assert package.keys == {}  # nothing to ship: the host holds its keys
    assert result.changed == ()
    assert {p: (layout.enclave_dir(p) / "key.pem").read_bytes() for p in keys} == keys


def test_renewal_makes_new_keys_on_the_host_and_answers_only_what_differs(
        cell_with_hosts: Cell, fixed_now: dt.datetime) -> None:
    cell = cell_with_hosts
    later = fixed_now + 70 * DAY
    layout = cell.layout("vision_pc")
    old_keys = {p: (layout.enclave_dir(p) / "key.pem").read_bytes() for p in ("/cell/camera", "/shared")}
    plan = plan_member(layout, cell.policy, "vision_pc", later)
    assert plan.due == ("/cell/camera", "/shared") and plan.crl_due

    request = make_renewal_request(cell.host("vision_pc"), "vision_pc", plan.due, later)
    answer = answer_request(cell.ca, cell.policy, parse_request(request.to_bytes(), "topic"), later,
                            source="topic", by_hand=False)
    result = cell.install("vision_pc", answer.document, later, expect_nonce=request.nonce)

    assert answer.issued == ("/cell/camera", "/shared") and answer.refused == {}
    assert set(answer.package.files) == {f"enclaves/{p.strip('/')}/{n}" for p in plan.due
                                         for n in ("cert.pem", "permissions.xml", "permissions.p7s")}
    assert result.changed == ("/cell/camera", "/shared")
    for path, old in old_keys.items():
        assert (layout.enclave_dir(path) / "key.pem").read_bytes() != old and _key_matches(layout, path)
    assert {r.key_origin for r in read_manifest(layout).enclaves.values()} == {"host"}
    assert plan_member(layout, cell.policy, "vision_pc", later).due == ()
    assert check_integrity(layout, at=later).ok


def test_crl_answers_carry_a_fresh_crl_and_revocations(cell_with_hosts: Cell, fixed_now: dt.datetime) -> None:
    cell = cell_with_hosts
    later = fixed_now + 6 * DAY
    revoke_enclave(cell.ca, "/cell/arm", "key_compromise", later, cell.policy)
    refresh_crl(cell.ca, later, cell.policy, force=True)
    layout = cell.layout("vision_pc")

    request = make_crl_request(layout, "vision_pc", "/cell/camera", later)
    answer = answer_request(cell.ca, cell.policy, parse_request(request.to_bytes(), "t"), later, source="t",
                            by_hand=False)
    cell.install("vision_pc", answer.document, later, expect_nonce=request.nonce)

    crl = load_crl(layout)
    arm = cell.layout("cell_pc").enclave_dir("/cell/arm") / "cert.pem"
    serial = pki.load_certificate(arm.read_bytes(), arm).serial_number
    assert crl is not None and crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert set(answer.package.files) == {"public/crl.pem"}
    assert check_integrity(layout, at=later).ok


def test_policy_moves_an_enclave_away_and_its_key_leaves_the_host(cell_with_hosts: Cell,
                                                                   fixed_now: dt.datetime) -> None:
    cell = cell_with_hosts
    cell.policy = replace(cell.policy, enclaves=tuple(replace(e, hosts=("cell_pc",)) if e.path == "/shared" else e
                                                       for e in cell.policy.enclaves))
    result = cell.bundle("vision_pc", fixed_now + DAY)

    layout = cell.layout("vision_pc")
    assert result.removed == ("/shared",)
    assert not (layout.enclaves_dir / "shared").exists()
    assert check_integrity(layout, at=fixed_now + DAY).ok
