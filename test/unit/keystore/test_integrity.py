"""integrity: the signed manifest of public artifacts detects edits, deletions, additions, forgeries."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from planted import directory_chain

from cobot_security.errors import KeystoreError
from cobot_security.keystore import transaction as transaction_module
from cobot_security.keystore.audit import read_audit_log
from cobot_security.keystore.integrity import (
    RAW_SIGNATURE_CONTEXT,
    check_integrity,
    signed_files,
)
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import revoke_enclave
from cobot_security.keystore.rotation import RotationItem, rotate_enclaves
from cobot_security.keystore.signed_json import seal_document, sign_bytes
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import NodeGrants, WorkcellPolicy
from cobot_security.tree import remove_tree


@pytest.fixture
def layout(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> KeystoreLayout:
    init_keystore(tmp_path / "ks", policy, fixed_now)
    return KeystoreLayout(tmp_path / "ks")


def test_fresh_keystore_verifies(layout: KeystoreLayout) -> None:
    result = check_integrity(layout)
    assert result.ok, result
    document = json.loads(layout.integrity_json.read_bytes())
    assert document["version"] == 1
    files = document["files"]
    assert "enclaves/cell/arm_driver/permissions.xml" in files
    assert files["enclaves/gripper/governance.p7s"] == "link:../governance.p7s"
    assert not any(name.startswith(("private/", ".cobot_security/")) for name in files)


def test_modified_permissions_xml_is_reported(layout: KeystoreLayout) -> None:
    path = layout.enclave_dir("/gripper") / "permissions.xml"
    path.write_bytes(path.read_bytes().replace(b"DENY", b"ALLOW"))
    result = check_integrity(layout)
    assert result.signature_ok
    assert result.modified == ("enclaves/gripper/permissions.xml",)
    assert not result.ok


def test_deleted_cert_is_missing(layout: KeystoreLayout) -> None:
    (layout.enclave_dir("/cell/arm_driver") / "cert.pem").unlink()
    result = check_integrity(layout)
    assert result.missing == ("enclaves/cell/arm_driver/cert.pem",)
    assert not result.ok


def test_extra_files_are_unexpected(layout: KeystoreLayout) -> None:
    (layout.public_dir / "rogue_ca.cert.pem").write_bytes(b"x")
    (layout.enclave_dir("/gripper") / ".hidden").write_bytes(b"x")
    result = check_integrity(layout)
    assert result.unexpected == ("enclaves/gripper/.hidden", "public/rogue_ca.cert.pem")


def test_a_planted_deep_directory_chain_is_unexpected_not_a_crash(layout: KeystoreLayout) -> None:
    with directory_chain(layout.root / "enclaves", 1200) as deep:
        (deep / "x").write_text("planted")
        result = check_integrity(layout)
    assert result.signature_ok and not result.ok
    assert result.unexpected == ("enclaves/" + "d/" * 1200 + "x",)


def test_retargeted_symlink_is_modified(layout: KeystoreLayout) -> None:
    link = layout.enclave_dir("/gripper") / "permissions_ca.cert.pem"
    link.unlink()
    link.symlink_to("../../public/identity_ca.cert.pem")
    assert check_integrity(layout).modified == ("enclaves/gripper/permissions_ca.cert.pem",)


def test_edited_manifest_fails_its_signature(layout: KeystoreLayout) -> None:
    path = layout.enclave_dir("/gripper") / "permissions.xml"
    path.write_bytes(b"<forged/>")
    manifest = layout.integrity_json
    document = json.loads(manifest.read_bytes())
    document["files"]["enclaves/gripper/permissions.xml"] = "0" * 64
    manifest.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    result = check_integrity(layout)
    assert not result.signature_ok
    assert result.problem is not None and "signature" in result.problem


def test_edited_signed_content_fails(layout: KeystoreLayout) -> None:
    p7s = layout.integrity_p7s
    data = p7s.read_bytes()
    digest = json.loads(layout.integrity_json.read_bytes())["files"]["enclaves/gripper/cert.pem"]
    assert digest.encode() in data
    p7s.write_bytes(data.replace(digest.encode(), b"0" * 64))
    result = check_integrity(layout)
    assert not result.signature_ok
    assert result.problem is not None and "does not verify" in result.problem


def test_foreign_signature_fails(tmp_path: Path, layout: KeystoreLayout, policy: WorkcellPolicy,
                                 fixed_now: dt.datetime) -> None:
    other = KeystoreLayout(tmp_path / "other")
    init_keystore(other.root, policy, fixed_now)
    shutil.copy(other.integrity_p7s, layout.integrity_p7s)
    shutil.copy(other.integrity_json, layout.integrity_json)
    assert not check_integrity(layout).signature_ok


def test_no_manifest(layout: KeystoreLayout) -> None:
    layout.integrity_p7s.unlink()
    result = check_integrity(layout)
    assert not result.signature_ok
    assert result.problem is not None and "no integrity manifest" in result.problem


def test_create_enclave_force_keeps_integrity(layout: KeystoreLayout, policy: WorkcellPolicy,
                                              fixed_now: dt.datetime) -> None:
    store = Keystore.open(layout.root)
    before = layout.integrity_p7s.read_bytes()
    store.create_enclave(policy.enclaves[0], policy, fixed_now + dt.timedelta(days=1), force=True)
    assert check_integrity(layout).ok
    assert layout.integrity_p7s.read_bytes() != before


def test_create_new_enclave_keeps_integrity(layout: KeystoreLayout, policy: WorkcellPolicy,
                                            fixed_now: dt.datetime) -> None:
    extra = dataclasses.replace(policy.enclaves[1], path="/cell/camera",
                                nodes=(NodeGrants(name="camera", namespace="/cell"),))
    grown = dataclasses.replace(policy, enclaves=policy.enclaves + (extra,))
    Keystore.open(layout.root).create_enclave(extra, grown, fixed_now)
    result = check_integrity(layout)
    assert result.ok, result


def test_single_ca_keystore(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    layout = KeystoreLayout(tmp_path / "single")
    init_keystore(layout.root, policy, fixed_now, single_ca=True)
    assert check_integrity(layout).ok
    files = json.loads(layout.integrity_json.read_bytes())["files"]
    assert files["public/identity_ca.cert.pem"] == "link:ca.cert.pem"
    (layout.public_dir / "identity_ca.cert.pem").unlink()
    assert check_integrity(layout).missing == ("public/identity_ca.cert.pem",)


def _rotate(layout: KeystoreLayout, policy: WorkcellPolicy, path: str, now: dt.datetime) -> None:
    rotate_enclaves(Keystore.open(layout.root), policy, [RotationItem(path, "requested", None, None)], now)


def test_a_change_never_signs_a_tampering_it_did_not_make(layout: KeystoreLayout, policy: WorkcellPolicy,
                                                         fixed_now: dt.datetime) -> None:
    permissions = layout.enclave_dir("/gripper") / "permissions.xml"
    permissions.write_bytes(permissions.read_bytes().replace(b"DENY", b"ALLOW"))
    (layout.enclave_dir("/cell/arm_driver") / "cert.pem").chmod(0o644)  # a mode is not content: untouched
    (layout.public_dir / "rogue_ca.cert.pem").write_bytes(b"x")
    (layout.enclaves_dir / "governance.xml").unlink()
    later = fixed_now + dt.timedelta(days=1)

    # Each kind of change re-signs the manifest; none of them adopts what someone else did.
    _rotate(layout, policy, "/cell/arm_driver", later)
    revoke_enclave(Keystore.open(layout.root), "/cell/arm_driver", "key_compromise", later, policy)
    Keystore.open(layout.root).create_enclave(policy.enclave("/cell/arm_driver"), policy, later, force=True)
    result = check_integrity(layout)
    assert result.signature_ok
    assert (result.modified, result.missing, result.unexpected) == (
        ("enclaves/gripper/permissions.xml",), ("enclaves/governance.xml",), ("public/rogue_ca.cert.pem",))

    # Re-issuing the tampered enclave replaces its files: that part is repaired, the rest still shows.
    _rotate(layout, policy, "/gripper", later)
    result = check_integrity(layout)
    assert (result.modified, result.missing, result.unexpected) == (
        (), ("enclaves/governance.xml",), ("public/rogue_ca.cert.pem",))


def test_a_change_over_a_missing_manifest_signs_the_tree_and_audits_it(layout: KeystoreLayout,
                                                                      policy: WorkcellPolicy,
                                                                      fixed_now: dt.datetime) -> None:
    layout.integrity_p7s.unlink()
    layout.integrity_sig.unlink()
    _rotate(layout, policy, "/gripper", fixed_now + dt.timedelta(days=1))
    assert check_integrity(layout).ok
    rebased = [r for r in read_audit_log(layout) if r.event == "integrity_rebased"]
    assert len(rebased) == 1 and "did not verify" in rebased[0].details["reason"]

    _rotate(layout, policy, "/gripper", fixed_now + dt.timedelta(days=2))  # verified again: not re-based
    assert len([r for r in read_audit_log(layout) if r.event == "integrity_rebased"]) == 1


def test_the_raw_signature_alone_carries_the_signed_digests(layout: KeystoreLayout, policy: WorkcellPolicy,
                                                            fixed_now: dt.datetime) -> None:
    """The in-process signature serves a change when the S/MIME one is gone: no re-base, no laundering."""
    permissions = layout.enclave_dir("/gripper") / "permissions.xml"
    permissions.write_bytes(permissions.read_bytes().replace(b"DENY", b"ALLOW"))
    layout.integrity_p7s.unlink()
    assert not check_integrity(layout).signature_ok  # the probe trusts the S/MIME signature only

    _rotate(layout, policy, "/cell/arm_driver", fixed_now + dt.timedelta(days=1))
    result = check_integrity(layout)
    assert result.signature_ok and result.modified == ("enclaves/gripper/permissions.xml",)
    assert "integrity_rebased" not in [r.event for r in read_audit_log(layout)]


@pytest.mark.parametrize("forge", ["edit_json", "foreign_signature", "sealed_document"])
def test_a_raw_signature_that_does_not_cover_the_manifest_leaves_the_verdict_to_smime(
        layout: KeystoreLayout, policy: WorkcellPolicy, fixed_now: dt.datetime, forge: str) -> None:
    """An edited readable copy, a signature by another key, or another document the same CA signed
    (a sealed envelope's payload and signature) never stand for the manifest."""
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = json.loads(layout.integrity_json.read_bytes())
    forged["files"]["enclaves/gripper/permissions.xml"] = "0" * 64
    data = (json.dumps(forged, indent=2, sort_keys=True) + "\n").encode()
    ca = Keystore.open(layout.root).load_ca_keys().permissions
    if forge == "edit_json":
        layout.integrity_json.write_bytes(data)
    elif forge == "foreign_signature":
        layout.integrity_json.write_bytes(data)
        layout.integrity_sig.write_bytes(sign_bytes(RAW_SIGNATURE_CONTEXT + data, other_key))
    else:
        sealed = json.loads(seal_document(forged, ca.cert, ca.key))
        layout.integrity_json.write_bytes(base64.b64decode(sealed["payload"]))
        layout.integrity_sig.write_bytes(base64.b64decode(sealed["signature"]))
    assert signed_files(layout) is not None  # the S/MIME signature still verifies: its content counts
    assert signed_files(layout)["enclaves/gripper/permissions.xml"] != "0" * 64


def test_a_planted_journal_does_not_make_the_next_change_sign_a_tampering(layout: KeystoreLayout,
                                                                          policy: WorkcellPolicy,
                                                                          fixed_now: dt.datetime) -> None:
    (layout.enclaves_dir / "governance.xml").unlink()
    permissions = layout.enclave_dir("/gripper") / "permissions.xml"
    permissions.write_bytes(permissions.read_bytes().replace(b"DENY", b"ALLOW"))
    layout.journal.write_text('{"operation": "rotate"}')  # looks like an interrupted change

    _rotate(layout, policy, "/cell/arm_driver", fixed_now + dt.timedelta(days=1))

    result = check_integrity(layout)
    assert (result.modified, result.missing) == (("enclaves/gripper/permissions.xml",), ("enclaves/governance.xml",))
    events = [r.event for r in read_audit_log(layout)]
    assert "recover" in events and "integrity_reread" not in events, events  # no enclave re-read


def test_after_a_real_interruption_the_enclaves_it_switched_in_are_read_again_and_audited(
        layout: KeystoreLayout, policy: WorkcellPolicy, fixed_now: dt.datetime,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, "injected I/O error")

    with monkeypatch.context() as patch:  # both enclaves switched in, then the commit fails
        patch.setattr(transaction_module, "append_audit", refuse)
        with pytest.raises(KeystoreError):
            rotate_enclaves(Keystore.open(layout.root), policy,
                            [RotationItem(e.path, "requested", None, None) for e in policy.enclaves],
                            fixed_now + dt.timedelta(days=1))
    assert layout.journal.exists() and not check_integrity(layout).ok  # new enclaves, old manifest

    Keystore.open(layout.root).create_enclave(policy.enclaves[0], policy, fixed_now + dt.timedelta(days=2),
                                              force=True)  # any next change recovers
    assert check_integrity(layout).ok
    reread = [r for r in read_audit_log(layout) if r.event == "integrity_reread"]
    assert len(reread) == 1 and reread[0].details["enclaves"] == "enclaves/cell/arm_driver, enclaves/gripper"


def test_a_tree_deeper_than_path_max_is_a_problem_not_an_exception(layout: KeystoreLayout) -> None:
    fd = os.open(layout.enclave_dir("/gripper"), os.O_RDONLY)
    try:
        for _ in range(2100):  # 4,200 characters below the enclave: past PATH_MAX for path-based calls
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("planted", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)
    result = check_integrity(layout)
    assert not result.ok and result.problem is not None and "cannot read the keystore tree" in result.problem
    remove_tree(layout.enclave_dir("/gripper") / "d")
