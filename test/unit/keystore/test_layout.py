"""KeystoreLayout: every path in one place, sros2-style relative links, path traversal refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cobot_security.errors import InvalidNameError, KeystoreError
from cobot_security.keystore.layout import (
    ENCLAVE_FILES,
    KeystoreLayout,
    enclave_link_targets,
)


def test_paths_match_the_sros2_layout(tmp_path: Path) -> None:
    layout = KeystoreLayout(tmp_path)
    assert layout.identity_ca_cert == tmp_path / "public" / "identity_ca.cert.pem"
    assert layout.permissions_ca_cert == tmp_path / "public" / "permissions_ca.cert.pem"
    assert layout.identity_ca_key == tmp_path / "private" / "identity_ca.key.pem"
    assert layout.permissions_ca_key == tmp_path / "private" / "permissions_ca.key.pem"
    assert layout.governance_p7s == tmp_path / "enclaves" / "governance.p7s"
    assert layout.governance_xml == tmp_path / "enclaves" / "governance.xml"
    assert layout.enclave_dir("/cell/arm") == tmp_path / "enclaves" / "cell" / "arm"
    assert layout.enclave_file("/cell/arm", "key.pem") == tmp_path / "enclaves" / "cell" / "arm" / "key.pem"
    assert layout.manifest.parent.name.startswith(".")
    assert set(ENCLAVE_FILES) == {
        "identity_ca.cert.pem", "cert.pem", "key.pem", "permissions_ca.cert.pem",
        "governance.p7s", "permissions.xml", "permissions.p7s",
    }


def test_link_targets_equal_sros2_for_depth_two() -> None:
    assert enclave_link_targets("/talker_listener/talker") == {
        "identity_ca.cert.pem": "../../../public/identity_ca.cert.pem",
        "permissions_ca.cert.pem": "../../../public/permissions_ca.cert.pem",
        "governance.p7s": "../../governance.p7s",
    }


@pytest.mark.parametrize("path", ["/a", "/a/b", "/a/b/c/d"])
def test_link_targets_resolve_for_any_depth(tmp_path: Path, path: str) -> None:
    layout = KeystoreLayout(tmp_path)
    directory = layout.enclave_dir(path)
    for name, target in enclave_link_targets(path).items():
        resolved = Path(os.path.normpath(directory / target))
        expected = layout.governance_p7s if name == "governance.p7s" else layout.public_dir / name
        assert resolved == expected


@pytest.mark.parametrize("bad", ["cell/arm", "/cell/../etc", "/..", "/", "", "/cell//arm", "/cell/arm/",
                                 "/cell/.hidden", "/cell/a b", "/../../tmp"])
def test_unsafe_enclave_names_are_rejected(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidNameError, match="expected an absolute enclave name"):
        KeystoreLayout(tmp_path).enclave_dir(bad)


def test_enclave_dir_escaping_through_a_symlink_is_rejected(tmp_path: Path) -> None:
    layout = KeystoreLayout(tmp_path / "ks")
    layout.enclaves_dir.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (layout.enclaves_dir / "cell").symlink_to(outside)
    with pytest.raises(KeystoreError, match="expected a directory inside"):
        layout.enclave_dir("/cell/arm")


def test_enclave_file_rejects_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="expected one of"):
        KeystoreLayout(tmp_path).enclave_file("/cell/arm", "../../x")
