"""The transaction and the integrity manifest of a host keystore: no CA key, the authority's signature."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from host_cell import Cell, tree_state

from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore.host_authority import bundle_host
from cobot_security.keystore.host_install import read_package
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.signed_json import open_document, seal_document
from cobot_security.keystore.store import Keystore

DAY = dt.timedelta(days=1)


def test_the_host_manifest_leaves_keys_out_and_catches_everything_else(cell_with_hosts: Cell,
                                                                       fixed_now: dt.datetime) -> None:
    layout = cell_with_hosts.layout("cell_pc")
    signed = json.loads(layout.integrity_json.read_bytes())
    assert signed["host"] == "cell_pc" and signed["keys"] == "excluded"
    assert not [p for p in signed["files"] if p.endswith("key.pem")]

    (layout.enclave_dir("/cell/arm") / "key.pem").write_bytes(b"rotated by hand\n")  # keys: the key_modes probe's
    assert check_integrity(layout, at=fixed_now).ok
    (layout.enclave_dir("/cell/arm") / "permissions.xml").write_bytes(b"<dds/>")
    (layout.enclaves_dir / "cell" / "extra.pem").write_bytes(b"x")
    result = check_integrity(layout, at=fixed_now)
    assert result.modified == ("enclaves/cell/arm/permissions.xml",)
    assert result.unexpected == ("enclaves/cell/extra.pem",)


def test_a_host_change_without_the_authority_manifest_is_refused(cell_with_hosts: Cell,
                                                                  fixed_now: dt.datetime) -> None:
    keystore = cell_with_hosts.host("cell_pc")
    before = tree_state(keystore.layout.root)
    with pytest.raises(KeystoreError, match="holds no CA key"):
        with keystore.transaction(fixed_now, "edit", needs_ca=False, host_keystore=True) as tx:
            tx.stage_keystore()
            tx.write_file(tx.layout.crl, b"forged\n", 0o644)
    assert not os.path.lexists(keystore.layout.journal)
    assert {k: v for k, v in tree_state(keystore.layout.root).items() if "lock" not in k} == \
        {k: v for k, v in before.items() if "lock" not in k}


def test_adopt_refuses_a_manifest_that_does_not_describe_the_tree(cell_with_hosts: Cell,
                                                                  fixed_now: dt.datetime) -> None:
    cell = cell_with_hosts
    keystore = cell.host("cell_pc")
    document = bundle_host(cell.ca, cell.policy, "cell_pc", fixed_now).document
    package = read_package(document, cell.pinned, cell.pinned_path, fixed_now, "b")
    before = tree_state(keystore.layout.root)
    with pytest.raises(KeystoreError, match="does not describe the installed tree"):
        with keystore.transaction(fixed_now, "edit", needs_ca=False, host_keystore=True) as tx:
            staged = tx.stage_keystore()
            (staged.enclaves_dir / "planted.txt").write_bytes(b"x")
            tx.adopt_integrity(package.integrity)
    assert {k: v for k, v in tree_state(keystore.layout.root).items() if "lock" not in k} == \
        {k: v for k, v in before.items() if "lock" not in k}


def test_an_interrupted_host_install_is_repaired_without_ca_keys(cell_with_hosts: Cell,
                                                                 fixed_now: dt.datetime) -> None:
    keystore = cell_with_hosts.host("cell_pc")
    layout = keystore.layout
    # What a crash between staging and the exchange leaves: the journal and a staged copy.
    layout.journal.write_text('{"operation": "host_install"}')
    (layout.root.parent / f".{layout.root.name}.staging-dead").mkdir()
    with keystore.transaction(fixed_now + DAY, "host_request", needs_ca=False, host_keystore=True):
        pass
    assert not layout.journal.exists()
    assert not (layout.root.parent / f".{layout.root.name}.staging-dead").exists()
    assert check_integrity(layout, at=fixed_now).ok
    assert "recover" in layout.audit_log.read_text()


def test_open_host_creates_an_empty_keystore_and_refuses_a_file(tmp_path: Path) -> None:
    assert Keystore.open_host(tmp_path / "new" / "ks").layout.root.is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(KeystoreError, match="another kind of file"):
        Keystore.open_host(tmp_path / "file")


def test_envelope_signer_validity_and_tampering(cell_with_hosts: Cell, fixed_now: dt.datetime) -> None:
    ca = cell_with_hosts.ca.load_ca_keys().permissions
    sealed = seal_document({"a": 1}, ca.cert, ca.key)
    assert open_document(sealed, ca.cert, fixed_now, "d") == {"a": 1}
    with pytest.raises(InputError, match="valid at"):
        open_document(sealed, ca.cert, fixed_now + 3651 * DAY, "d")
    with pytest.raises(InputError, match="signed by another CA"):
        identity = cell_with_hosts.ca.load_ca_keys().identity
        open_document(seal_document({"a": 1}, identity.cert, identity.key), ca.cert, fixed_now, "d")
    envelope = json.loads(sealed)
    envelope["payload"] = "eyJhIjogMn0="  # {"a": 2}
    with pytest.raises(InputError, match="does not verify"):
        open_document(json.dumps(envelope).encode(), ca.cert, fixed_now, "d")


def test_the_view_is_a_keyless_layout(cell_with_hosts: Cell) -> None:
    view = KeystoreLayout(cell_with_hosts.ca.layout.host_view("vision_pc"))
    assert sorted(p.name for p in view.root.iterdir()) == ["enclaves", "host.json", "public"]
    assert not list(view.root.rglob("*key.pem"))
