"""A small multi-host cell for the host exchange tests: a CA keystore, an enrolled and a bundled host."""

from __future__ import annotations

import datetime as dt
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from cobot_security.keystore.host_authority import answer_request, bundle_host
from cobot_security.keystore.host_documents import parse_request
from cobot_security.keystore.host_install import InstallResult, install_package
from cobot_security.keystore.host_member import make_enrollment_request
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import WorkcellPolicy


@dataclass
class Cell:
    """The CA keystore and two host keystores of one test, plus the pinned permissions CA."""

    root: Path
    policy: WorkcellPolicy
    ca: Keystore
    pinned_path: Path
    pinned: x509.Certificate

    def host(self, name: str) -> Keystore:
        """The keystore of host ``name`` (created empty when new)."""
        return Keystore.open_host(self.root / name)

    def layout(self, name: str) -> KeystoreLayout:
        """The layout of host ``name``'s keystore."""
        return KeystoreLayout(self.root / name)

    def install(self, name: str, document: bytes, now: dt.datetime, **kwargs: object) -> InstallResult:
        """Install ``document`` into host ``name``'s keystore, pinned to this cell's CA."""
        return install_package(self.host(name), document, self.pinned, self.pinned_path, now,
                               source=f"{name}.package", **kwargs)  # type: ignore[arg-type]

    def enroll(self, name: str, now: dt.datetime) -> InstallResult:
        """host request → host sign → host install, all at ``now``."""
        request = make_enrollment_request(self.host(name), self.policy, name, now)
        answer = answer_request(self.ca, self.policy, parse_request(request.to_bytes(), "request"), now,
                                source="request", by_hand=True)
        return self.install(name, answer.document, now)

    def bundle(self, name: str, now: dt.datetime) -> InstallResult:
        """host bundle → host install at ``now``."""
        return self.install(name, bundle_host(self.ca, self.policy, name, now).document, now, host=name)


def make_cell(root: Path, policy: WorkcellPolicy, now: dt.datetime) -> Cell:
    """A CA keystore for ``policy`` made at ``now``; the hosts are left to the test."""
    ca = init_keystore(root / "ca", policy, now)
    pinned_path = root / "ca" / "public" / "permissions_ca.cert.pem"
    return Cell(root, policy, ca, pinned_path, x509.load_pem_x509_certificate(pinned_path.read_bytes()))


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below ``root``: regular files by (inode, size, mode) — a rewritten file gets a new
    inode, an unchanged one keeps it through a staged install —, links by target, directories by mode."""
    state: dict[str, tuple[object, ...]] = {}
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(current) / name
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                state[str(path.relative_to(root))] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                state[str(path.relative_to(root))] = ("dir", st.st_mode)
            else:
                state[str(path.relative_to(root))] = (st.st_ino, st.st_size, st.st_mode)
    return state
