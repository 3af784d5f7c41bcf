"""store: whole keystores and enclaves, rmw-loadable, atomic, locked, passphrase-protected."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree

from cobot_security import atomic
from cobot_security.errors import (
    InvalidNameError,
    KeystoreError,
    LockError,
    PassphraseError,
)
from cobot_security.keystore import store
from cobot_security.keystore.enclaves import EnclaveMaterial
from cobot_security.keystore.layout import ENCLAVE_FILES, ENCLAVE_LINKS, KeystoreLayout
from cobot_security.keystore.smime import verify_smime
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import Enclave, NodeGrants, WorkcellPolicy
from cobot_security.policy.permissions import (
    compile_permissions,
    grant_digest,
    subject_name,
)

SECRET = b"s3cret-pass"
PolicyFactory = Callable[..., WorkcellPolicy]


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry under ``root`` with its type, mode and content hash (or link target)."""
    result: dict[str, str] = {}
    for current, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = Path(current) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if path.is_symlink():
                result[rel] = "l " + os.readlink(path)
            elif path.is_dir():
                result[rel] = f"d {st.st_mode & 0o7777:o}"
            else:
                result[rel] = f"f {st.st_mode & 0o7777:o} " + hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def siblings(root: Path) -> list[str]:
    """Names beside ``root`` (to find leftover staging or backup directories)."""
    return sorted(p.name for p in root.parent.iterdir() if p != root)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_layout_and_modes(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    layout = ks.layout
    assert _mode(layout.root) == 0o755
    assert _mode(layout.public_dir) == 0o755 and _mode(layout.enclaves_dir) == 0o755
    assert _mode(layout.private_dir) == 0o700 and _mode(layout.meta_dir) == 0o700
    for key in (layout.identity_ca_key, layout.permissions_ca_key):
        assert _mode(key) == 0o600 and not key.is_symlink()
    for public in (layout.identity_ca_cert, layout.permissions_ca_cert, layout.governance_xml, layout.governance_p7s):
        assert _mode(public) == 0o644
    for path in ("/cell/arm_driver", "/gripper"):
        directory = layout.enclave_dir(path)
        assert _mode(directory) == 0o700  # it holds key.pem
        assert _mode(directory / "key.pem") == 0o600
        for name in ("cert.pem", "permissions.xml", "permissions.p7s"):
            assert _mode(directory / name) == 0o644
        for name in ENCLAVE_LINKS:
            assert (directory / name).is_symlink() and not os.path.isabs(os.readlink(directory / name))
        for name in ENCLAVE_FILES:
            assert (directory / name).is_file(), name
    assert os.readlink(layout.enclave_dir("/cell/arm_driver") / "identity_ca.cert.pem") == \
        "../../../public/identity_ca.cert.pem"
    assert os.readlink(layout.enclave_dir("/cell/arm_driver") / "governance.p7s") == "../../governance.p7s"
    assert os.readlink(layout.enclave_dir("/gripper") / "permissions_ca.cert.pem") == \
        "../../public/permissions_ca.cert.pem"
    assert (layout.enclave_dir("/gripper") / "governance.p7s").resolve() == layout.governance_p7s.resolve()
    assert siblings(layout.root) == []


def test_leaf_chains_subject_and_validity_match_permissions(
    tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime
) -> None:
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    cas = ks.ca_certificates()
    assert cas.identity.subject != cas.permissions.subject
    assert cas.identity.not_valid_before_utc == fixed_now - dt.timedelta(hours=1)
    assert cas.identity.not_valid_after_utc == fixed_now + policy.lifetimes.ca_duration
    directory = ks.layout.enclave_dir("/cell/arm_driver")
    cert = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
    cert.verify_directly_issued_by(cas.identity)
    assert cert.subject.rfc4514_string() == subject_name("/cell/arm_driver")
    grant = etree.fromstring((directory / "permissions.xml").read_bytes()).find("permissions/grant")
    assert grant.findtext("subject_name") == cert.subject.rfc4514_string()
    naive = cert.not_valid_before_utc.replace(tzinfo=None).isoformat()
    assert grant.findtext("validity/not_before") == naive
    assert grant.findtext("validity/not_after") == cert.not_valid_after_utc.replace(tzinfo=None).isoformat()
    assert cert.not_valid_after_utc == fixed_now + policy.lifetimes.enclave_duration
    expected = compile_permissions(policy, policy.enclaves[0], cert.not_valid_before_utc, cert.not_valid_after_utc)
    assert (directory / "permissions.xml").read_bytes() == expected


def test_enclave_validity_never_exceeds_the_identity_ca(
    tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime
) -> None:
    policy = policy_factory("/a", enclave_days=90, ca_days=30)
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    [info] = ks.list_enclaves()
    assert info.not_after == ks.ca_certificates().identity.not_valid_after_utc


def test_signatures_verify_against_the_permissions_ca(
    tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime
) -> None:
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    layout = ks.layout
    gov = verify_smime(layout.governance_p7s.read_bytes(), layout.permissions_ca_cert, at=fixed_now)
    assert gov == layout.governance_xml.read_bytes()
    for enclave in policy.enclaves:
        directory = layout.enclave_dir(enclave.path)
        content = verify_smime((directory / "permissions.p7s").read_bytes(),
                               directory / "permissions_ca.cert.pem", at=fixed_now)
        assert content == (directory / "permissions.xml").read_bytes()
        with pytest.raises(KeystoreError, match="expected a valid text signature"):
            verify_smime((directory / "permissions.p7s").read_bytes(), layout.identity_ca_cert, at=fixed_now)


def test_list_enclaves_and_manifest(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    infos = ks.list_enclaves()
    assert [i.path for i in infos] == ["/cell/arm_driver", "/gripper"]
    assert all(i.files_ok and i.missing == () for i in infos)
    assert infos[0].subject == "CN=/cell/arm_driver" and len(infos[0].fingerprint_sha256) == 95
    manifest = json.loads(ks.layout.manifest.read_bytes())
    assert _mode(ks.layout.manifest) == 0o600
    entry = manifest["enclaves"]["/cell/arm_driver"]
    assert entry["serial"] == infos[0].serial
    assert entry["not_after"] == infos[0].not_after.isoformat()
    assert entry["grant_sha256"] == grant_digest(policy, policy.enclaves[0])
    assert entry["key_origin"] == "keystore" and manifest["version"] == 2
    (infos[1].directory / "permissions.p7s").unlink()
    assert Keystore.open(ks.layout.root).list_enclaves()[1].missing == ("permissions.p7s",)


def test_grant_digest_follows_what_is_signed_not_how_the_policy_spells_it(policy: WorkcellPolicy) -> None:
    node = NodeGrants(name="arm", publish=("a",))
    base = grant_digest(policy, Enclave("/a", (node,), line=3))
    assert grant_digest(policy, Enclave("/a", (node,), line=9)) == base
    # The same grant written another way (absolute name, a second node with nothing new) digests the same.
    assert grant_digest(policy, Enclave("/a", (NodeGrants(name="arm", publish=("/a",)),))) == base
    changed = Enclave("/a", (NodeGrants(name="arm", publish=("a", "b")),))
    assert grant_digest(policy, changed) != base
    wider = dataclasses.replace(policy, domain_ids=(*policy.domain_ids, 7))
    assert grant_digest(wider, Enclave("/a", (node,))) != base


def test_create_enclaves_false_then_create_enclave(
    tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime
) -> None:
    ks = init_keystore(tmp_path / "ks", policy, fixed_now, create_enclaves=False)
    assert ks.list_enclaves() == []
    later = fixed_now + dt.timedelta(days=1)
    info = ks.create_enclave(policy.enclaves[0], policy, later)
    assert info.path == "/cell/arm_driver" and info.not_before == later - dt.timedelta(hours=1)
    assert _mode(ks.layout.enclave_dir("/cell")) == 0o755
    assert json.loads(ks.layout.manifest.read_bytes())["enclaves"]["/cell/arm_driver"]["serial"] == info.serial
    assert [p.name for p in ks.layout.enclave_dir("/cell").iterdir()] == ["arm_driver"]


def test_existing_enclave_needs_force(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    before = tree_digest(ks.layout.root)
    with pytest.raises(KeystoreError, match=r"enclave /gripper already exists; pass --force"):
        ks.create_enclave(policy.enclaves[1], policy, fixed_now)
    assert tree_digest(ks.layout.root) == before
    old_serial = ks.list_enclaves()[1].serial
    new = ks.create_enclave(policy.enclaves[1], policy, fixed_now, force=True)
    assert new.serial != old_serial and new.files_ok
    assert sorted(p.name for p in ks.layout.enclaves_dir.iterdir()) == ["cell", "governance.p7s",
                                                                         "governance.xml", "gripper"]


def test_replacing_a_parent_enclave_keeps_nested_enclaves(
    tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime
) -> None:
    policy = policy_factory("/cell", "/cell/arm")
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    nested = tree_digest(ks.layout.enclave_dir("/cell/arm"))
    ks.create_enclave(policy.enclaves[0], policy, fixed_now, force=True)
    assert tree_digest(ks.layout.enclave_dir("/cell/arm")) == nested
    assert [i.path for i in ks.list_enclaves()] == ["/cell", "/cell/arm"]


def test_interrupted_create_enclave_leaves_previous_enclave(
    tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    before = tree_digest(ks.layout.root)

    def fail(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(store.smime, "sign_smime", fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        ks.create_enclave(policy.enclaves[0], policy, fixed_now, force=True)
    assert tree_digest(ks.layout.root) == before


@pytest.mark.parametrize("bad", ["/cell/../../etc", "cell/arm", "/", "/cell/arm/"])
def test_unsafe_enclave_names_are_refused(
    tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime, bad: str
) -> None:
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    before = tree_digest(tmp_path)
    with pytest.raises(InvalidNameError, match="expected an absolute enclave name"):
        ks.create_enclave(Enclave(bad, ()), policy, fixed_now)
    with pytest.raises(InvalidNameError, match="expected an absolute enclave name"):
        init_keystore(tmp_path / "other", dataclasses.replace(policy, enclaves=(Enclave(bad, ()),)), fixed_now)
    assert tree_digest(tmp_path) == before


def test_passphrase_encrypted_cas(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    root = tmp_path / "ks"
    init_keystore(root, policy, fixed_now, passphrase=SECRET, create_enclaves=False)
    layout = KeystoreLayout(root)
    assert b"ENCRYPTED PRIVATE KEY" in layout.identity_ca_key.read_bytes()
    before = tree_digest(tmp_path)
    for wrong in (b"not-the-pass", None):
        with pytest.raises(PassphraseError, match="passphrase: expected the passphrase this CA key") as info:
            Keystore.open(root, wrong).create_enclave(policy.enclaves[0], policy, fixed_now)
        assert SECRET.decode() not in str(info.value) and "not-the-pass" not in str(info.value)
        assert str(info.value).startswith(str(layout.identity_ca_key))
    assert tree_digest(tmp_path) == before
    info_ok = Keystore.open(root, SECRET).create_enclave(policy.enclaves[0], policy, fixed_now)
    assert info_ok.files_ok
    assert b"ENCRYPTED" not in (info_ok.directory / "key.pem").read_bytes()


def test_existing_keystore_without_force_is_unchanged(
    tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime
) -> None:
    root = tmp_path / "ks"
    init_keystore(root, policy, fixed_now)
    before = tree_digest(tmp_path)
    with pytest.raises(KeystoreError, match=r"a keystore already exists; pass --force to replace it "
                                            r"\(the old one would then be kept as ks\.bak-20261129T120000Z\)"):
        init_keystore(root, policy, fixed_now)
    assert tree_digest(tmp_path) == before


def test_force_keeps_a_backup(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    root = tmp_path / "ks"
    init_keystore(root, policy, fixed_now)
    before = tree_digest(root)
    init_keystore(root, policy, fixed_now, force=True)
    assert siblings(root) == ["ks.bak-20261129T120000Z"]
    assert tree_digest(tmp_path / "ks.bak-20261129T120000Z") == before
    assert tree_digest(root) != before
    init_keystore(root, policy, fixed_now, force=True)
    assert siblings(root) == ["ks.bak-20261129T120000Z", "ks.bak-20261129T120000Z-1"]


def test_empty_existing_directory_is_used_without_force(
    tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime
) -> None:
    (tmp_path / "ks").mkdir()
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    assert len(ks.list_enclaves()) == 2 and siblings(ks.layout.root) == []


def test_interrupted_init_leaves_previous_keystore(
    tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ks"
    init_keystore(root, policy, fixed_now)
    before = tree_digest(tmp_path)
    real = store.write_material
    calls: list[str] = []

    def fail_on_second(directory: Path, material: EnclaveMaterial, *, link_crl: bool) -> None:
        calls.append(material.path)
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        real(directory, material, link_crl=link_crl)

    monkeypatch.setattr(store, "write_material", fail_on_second)
    with pytest.raises(RuntimeError, match="interrupted"):
        init_keystore(root, policy, fixed_now, force=True)
    assert tree_digest(tmp_path) == before
    assert siblings(root) == []


def test_interrupted_first_init_leaves_nothing(
    tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> bytes:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(store, "compile_governance", fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        init_keystore(tmp_path / "ks", policy, fixed_now)
    assert list(tmp_path.iterdir()) == []


def test_open_reports_what_is_missing(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    with pytest.raises(KeystoreError, match="expected a keystore directory, found none"):
        Keystore.open(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KeystoreError, match=r"empty: not a keystore: missing public/identity_ca.cert.pem, "
                                            r"public/permissions_ca.cert.pem, enclaves, enclaves/governance.p7s"):
        Keystore.open(tmp_path / "empty")
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    ks.layout.governance_p7s.unlink()
    with pytest.raises(KeystoreError, match="missing enclaves/governance.p7s"):
        Keystore.open(ks.layout.root)


def test_create_enclave_waits_for_the_lock(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    ks = init_keystore(tmp_path / "ks", policy, fixed_now, create_enclaves=False)
    contender = Keystore.open(ks.layout.root, lock_timeout_s=0.1)
    with atomic.KeystoreLock(ks.layout.lock, timeout_s=1):
        with pytest.raises(LockError, match=r"lock: another cobot-security process holds the keystore lock "
                                            r"\(pid \d+\); retry or wait"):
            contender.create_enclave(policy.enclaves[0], policy, fixed_now)
    assert contender.list_enclaves() == []
    assert contender.create_enclave(policy.enclaves[0], policy, fixed_now).files_ok


def test_single_ca_layout_like_sros2(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    ks = init_keystore(tmp_path / "ks", policy, fixed_now, single_ca=True)
    layout = ks.layout
    for directory, target in ((layout.public_dir, "ca.cert.pem"), (layout.private_dir, "ca.key.pem")):
        links = {p.name: os.readlink(p) for p in directory.iterdir() if p.is_symlink()}
        assert set(links.values()) == {target} and len(links) == 2
    assert _mode(layout.single_ca_key) == 0o600 and _mode(layout.single_ca_cert) == 0o644
    cas = ks.ca_certificates()
    assert cas.identity == cas.permissions
    assert cas.identity.subject.rfc4514_string() == "CN=cobot_security CA"
    [first, _] = ks.list_enclaves()
    cert = x509.load_pem_x509_certificate((first.directory / "cert.pem").read_bytes())
    cert.verify_directly_issued_by(cas.identity)
    content = verify_smime((first.directory / "permissions.p7s").read_bytes(),
                           first.directory / "permissions_ca.cert.pem", at=fixed_now)
    assert content == (first.directory / "permissions.xml").read_bytes()
    assert Keystore.open(layout.root).create_enclave(policy.enclaves[0], policy, fixed_now, force=True).files_ok


def test_tree_matches_the_sros2_oracle_shape(
    tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime, sros2_example: Path
) -> None:
    lines = (sros2_example / "keystore_tree.txt").read_text().splitlines()
    oracle_enclave = {line.split()[-3 if line.startswith("l") else -1].rsplit("/", 1)[1]: line
                      for line in lines if "/cell/node_0/" in line}
    ks = init_keystore(tmp_path / "ks", policy_factory("/cell/node_0"), fixed_now, single_ca=True)
    directory = ks.layout.enclave_dir("/cell/node_0")
    # Beyond the sros2 oracle, every enclave links rmw's optional crl.pem to public/crl.pem.
    assert sorted(p.name for p in directory.iterdir()) == sorted([*oracle_enclave, "crl.pem"])
    assert os.readlink(directory / "crl.pem") == "../../../public/crl.pem"
    for name, line in oracle_enclave.items():
        if line.startswith("l"):
            assert os.readlink(directory / name) == line.split(" -> ")[1]
        else:
            assert (directory / name).is_file() and not (directory / name).is_symlink()
    assert sorted(p.name for p in ks.layout.public_dir.iterdir()) == \
        ["ca.cert.pem", "crl.pem", "identity_ca.cert.pem", "permissions_ca.cert.pem"]
