"""Reading keystore files without following anything cobot_security did not create.

The rmw layout defines a few relative symlinks (an enclave's CA certificates, governance and CRL;
a single-CA keystore's CA names); every other entry must be a regular file owned by the
keystore's owner.  A planted link (to ``/etc/shadow``, to another keystore's key) or a file
slipped in by another user is refused with a message naming it, never read or archived.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cobot_security.errors import KeystoreError
from cobot_security.keystore.layout import (
    CRL,
    ENCLAVE_LINKS,
    IDENTITY_CA_CERT,
    IDENTITY_CA_KEY,
    PERMISSIONS_CA_CERT,
    PERMISSIONS_CA_KEY,
    SINGLE_CA_CERT,
    SINGLE_CA_KEY,
    KeystoreLayout,
    enclave_crl_target,
    enclave_link_targets,
)

#: Keystore files are small (certificates, keys, XML, CRLs); anything larger is not ours.
MAX_FILE_BYTES = 16 * 1024 * 1024


def layout_link_target(layout: KeystoreLayout, path: Path) -> str | None:
    """The relative target the rmw layout defines for ``path``, or None when it defines no link there."""
    try:
        parts = path.relative_to(layout.root).parts
    except ValueError:
        return None
    if len(parts) >= 3 and parts[0] == "enclaves":
        enclave, name = "/" + "/".join(parts[1:-1]), parts[-1]
        if name in ENCLAVE_LINKS:
            return enclave_link_targets(enclave)[name]
        if name == CRL:
            return enclave_crl_target(enclave)
    if parts in (("public", IDENTITY_CA_CERT), ("public", PERMISSIONS_CA_CERT)):
        return SINGLE_CA_CERT
    if parts in (("private", IDENTITY_CA_KEY), ("private", PERMISSIONS_CA_KEY)):
        return SINGLE_CA_KEY
    return None


def keystore_owner(layout: KeystoreLayout) -> int:
    """The uid owning the keystore root: every file we read must belong to it."""
    return os.lstat(layout.root).st_uid


def _refuse(path: Path, problem: str) -> KeystoreError:
    return KeystoreError(path, f"{problem}; cobot_security did not create it: inspect and remove it")


def resolve_keystore_file(layout: KeystoreLayout, path: Path, owner: int | None = None) -> Path:
    """The regular file ``path`` stands for: itself, or the target of a layout-defined link.

    :raises KeystoreError: a symlink the layout does not define (or pointing elsewhere than the
        layout says), a link leaving the keystore, not a regular file, or a foreign owner.
    :raises FileNotFoundError: ``path`` (or the link's target) does not exist.
    """
    owner = keystore_owner(layout) if owner is None else owner
    root = Path(os.path.normpath(layout.root))
    st = os.lstat(path)
    for _hop in range(2):  # an enclave's CA link may lead to a single-CA keystore's CA link
        if not stat.S_ISLNK(st.st_mode):
            break
        target = os.readlink(path)
        expected = layout_link_target(layout, path)
        if target != expected:
            wanted = f"a link to {expected}" if expected else "a regular file"
            raise _refuse(path, f"unexpected symlink to {target!r} (expected {wanted})")
        real = Path(os.path.normpath(path.parent / target))
        if root not in real.parents:
            raise _refuse(path, f"symlink {target!r} leaves the keystore")
        st, path = os.lstat(real), real
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(path, "a chain of more than two links")
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, "expected a regular file, got another kind of entry")
    if st.st_uid != owner:
        raise _refuse(path, f"owned by uid {st.st_uid}, expected the keystore owner (uid {owner})")
    return path


def read_keystore_file(layout: KeystoreLayout, path: Path, owner: int | None = None) -> bytes:
    """The bytes of a keystore file, refusing planted links and foreign files (see module doc).

    :raises KeystoreError: refused (see :func:`resolve_keystore_file`), too large, or unreadable.
    """
    try:
        real = resolve_keystore_file(layout, path, owner)
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise KeystoreError(exc.filename or path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise KeystoreError(path, f"expected a keystore file under {MAX_FILE_BYTES} bytes, got a larger one")
    return data
