"""Install what the authority sent into a host keystore: checked, staged whole, switched in at once.

:func:`install_package` opens the envelope with the *pinned* permissions CA certificate (trust on
first use is not offered), refuses a package for another host, an answer to another request, or
one older than what is installed, then — in one host keystore transaction — stages the whole
keystore, makes its public tree exactly the one the authority's signed integrity manifest
describes (writing only the files that differ: a re-install replaces only what changed; removing
enclaves no longer on this host, keys included), gives every enclave its private key (shipped in a
bundle, already here, or born here and waiting in ``pending/``), checks that the installed
permissions CA is the pinned one, adopts the signed manifest and switches the keystore in with one
exchange.  Any failure leaves the live keystore untouched.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore import pki, smime
from cobot_security.keystore.enclaves import enclave_dirs_holding
from cobot_security.keystore.files import layout_link_target, read_keystore_file
from cobot_security.keystore.history import enclave_history_dir
from cobot_security.keystore.host_checks import CLOCK_SKEW
from cobot_security.keystore.host_documents import HostPackage, parse_package, tree_path_enclave
from cobot_security.keystore.host_state import HostState, read_host_state
from cobot_security.keystore.integrity import LINK_PREFIX, hash_keystore_files
from cobot_security.keystore.layout import CERT, KEY, KeystoreLayout
from cobot_security.keystore.manifest import Manifest
from cobot_security.keystore.signed_json import open_document
from cobot_security.keystore.store import Keystore
from cobot_security.keystore.transaction import ENCLAVE_DIR_MODE, NAMESPACE_DIR_MODE, KeystoreTransaction
from cobot_security.tree import remove_tree


@dataclass(frozen=True)
class InstallResult:
    """What an install changed: enclaves with a new certificate or grant (restart), enclaves removed."""

    host: str
    kind: str
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    files_written: int
    refused: dict[str, str]


def _inside(root: Path, path: Path) -> Path:
    """``path`` if its parent resolves inside ``root`` (no planted directory link is followed)."""
    base = os.path.realpath(root)
    if os.path.commonpath([base, os.path.realpath(path.parent)]) != base:
        raise KeystoreError(path, "expected a path inside the keystore, got one leaving it through a link")
    return path


def _make_parents(layout: KeystoreLayout, rel: str) -> None:
    parts = rel.split("/")[:-1]
    current = layout.root
    for depth, token in enumerate(parts):
        current = current / token
        if current.is_symlink():
            raise KeystoreError(current, "expected a directory, got a symlink cobot_security did not create")
        if not current.is_dir():
            enclave_dir = parts[0] == "enclaves" and depth == len(parts) - 1 and depth >= 1
            os.mkdir(current, ENCLAVE_DIR_MODE if enclave_dir else NAMESPACE_DIR_MODE)
            os.chmod(current, ENCLAVE_DIR_MODE if enclave_dir else NAMESPACE_DIR_MODE)


def _remove_enclave(layout: KeystoreLayout, path: str) -> None:
    directory = layout.enclaves_dir.joinpath(*path[1:].split("/"))
    for entry in list(directory.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            continue  # a nested enclave keeps its own directory
        entry.unlink()
    parent = directory
    while parent != layout.enclaves_dir and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _apply_tree(tx: KeystoreTransaction, package: HostPackage, source: str) -> tuple[set[str], set[str], int]:
    """Make the staged tree the signed one; (enclaves changed, enclaves removed, files written)."""
    layout, target = tx.layout, package.expected_tree()
    current = hash_keystore_files(layout, exclude_keys=True)
    wanted = {e for e in (tree_path_enclave(p) for p in target) if e is not None}
    removed = {e for e in enclave_dirs_holding(layout) if e not in wanted}
    for enclave in sorted(removed, key=len, reverse=True):
        _remove_enclave(layout, enclave)
    current = hash_keystore_files(layout, exclude_keys=True)
    for rel in sorted(set(current) - set(target)):
        os.unlink(_inside(layout.root, layout.root / rel))
    changed: set[str] = set()
    written = 0
    for rel, digest in sorted(target.items()):
        if current.get(rel) == digest:
            continue
        path = _inside(layout.root, layout.root / rel)
        _make_parents(layout, rel)
        if digest.startswith(LINK_PREFIX):
            link = digest[len(LINK_PREFIX):]
            if layout_link_target(layout, path) != link:
                raise InputError(source, f"integrity.files.{rel}", "a link the rmw layout defines", repr(link))
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink(link, path)
            continue
        data = package.files.get(rel)
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            raise InputError(source, f"files.{rel}", "the file the signed manifest lists",
                             "none in the package and a different one here" if data is None else "other content")
        tx.write_file(path, data, 0o644)
        written += 1
        owner = tree_path_enclave(rel)
        if owner is not None:
            changed.add(owner)
    return changed, removed, written


def _key_for(layout: KeystoreLayout, path: str, cert: x509.Certificate, shipped: bytes | None,
             source: str) -> tuple[bytes | None, Path | None]:
    """(key bytes to write or None to keep the present one, pending key file to drop)."""
    here = layout.enclave_dir(path) / KEY
    candidates: list[tuple[bytes, Path | None, bool]] = []
    if os.path.lexists(here):
        candidates.append((read_keystore_file(layout, here), None, False))
    if shipped is not None:
        candidates.append((shipped, None, True))
    pending = layout.pending_key(path)
    if os.path.lexists(pending):
        candidates.append((read_keystore_file(layout, pending), pending, True))
    for pem, drop, write in candidates:
        try:
            key = pki.load_private_key(pem, None, here)
        except KeystoreError:
            continue
        if pki.key_matches_certificate(key, cert):
            return (pem if write else None), drop
    raise InputError(source, f"enclaves.{path}", "a private key on this host matching its certificate",
                     "none (make a request with cobot-security host request, or install a bundle)")


def _place_keys(tx: KeystoreTransaction, package: HostPackage, source: str) -> set[str]:
    """Give every enclave of the staged tree its key; return the enclaves whose key changed."""
    layout = tx.layout
    changed: set[str] = set()
    for path in sorted({e for e in (tree_path_enclave(p) for p in package.expected_tree()) if e}):
        cert_path = layout.enclave_dir(path) / CERT
        cert = pki.load_certificate(read_keystore_file(layout, cert_path), cert_path)
        write, drop = _key_for(layout, path, cert, package.keys.get(path), source)
        if write is not None:
            tx.write_file(layout.enclave_dir(path) / KEY, write, 0o600)
            changed.add(path)
        if drop is not None:
            os.unlink(drop)
    return changed


def _check_pinned(layout: KeystoreLayout, pinned: x509.Certificate) -> None:
    path = layout.permissions_ca_cert
    installed = pki.load_certificate(read_keystore_file(layout, path), path)
    der = serialization.Encoding.DER
    if installed.public_bytes(der) != pinned.public_bytes(der):
        raise KeystoreError(path, "expected the pinned permissions CA certificate in the package, got another one")


def _check_addressed(package: HostPackage, state: HostState | None, host: str | None, now: _dt.datetime,
                     expect_nonce: str | None, source: str) -> str:
    """The host this keystore is for, after refusing a misaddressed, unexpected or older package."""
    this_host = host or (state.host if state is not None else None)
    if this_host is None:
        raise InputError(source, "--host", "the host this keystore is for (or a keystore made by host request)",
                         "none")
    if state is not None and state.host != this_host:
        raise InputError(source, "--host", f"host {state.host} (this keystore's)", repr(this_host))
    if package.host != this_host:
        raise InputError(source, "host", f"a package for host {this_host}", f"one for host {package.host}")
    if package.kind != "bundle":
        wanted = expect_nonce or (state.request_nonce if state is not None else None)
        if wanted != package.nonce:
            raise InputError(source, "nonce", "the answer to this keystore's pending request",
                             "an answer to another request" if wanted else "an answer, but no request is pending")
    if package.created > now + CLOCK_SKEW:
        raise InputError(source, "created", f"a time before {iso_utc(now + CLOCK_SKEW)}", iso_utc(package.created))
    if state is not None and state.installed is not None and package.created < state.installed:
        raise InputError(source, "created", f"a package made after the installed one ({iso_utc(state.installed)})",
                         f"an older one ({iso_utc(package.created)})")
    return this_host


def _unchanged(layout: KeystoreLayout, package: HostPackage) -> bool:
    """Whether the live tree already is the package's (a CRL answer that brings nothing new)."""
    return not package.keys and hash_keystore_files(layout, exclude_keys=True) == package.expected_tree()


def read_package(data: bytes, pinned: x509.Certificate, pinned_path: Path, now: _dt.datetime,
                 source: str) -> HostPackage:
    """Open and parse a package sealed by the pinned CA; its integrity manifest verified by S/MIME too.

    :raises InputError: see :func:`cobot_security.keystore.signed_json.open_document` and
        :func:`cobot_security.keystore.host_documents.parse_package`.
    """
    package = parse_package(open_document(data, pinned, now, source), source)
    try:
        signed = smime.verify_smime(package.integrity.p7s, pinned_path, at=now, source=f"{source}: integrity")
    except KeystoreError as exc:
        raise InputError(source, "integrity.p7s", "a manifest signed by the pinned CA", exc.problem) from None
    if signed != package.integrity.data:
        raise InputError(source, "integrity", "the readable manifest equal to the signed one", "a different one")
    return package


def install_package(keystore: Keystore, data: bytes, pinned: x509.Certificate, pinned_path: Path,
                    now: _dt.datetime, *, source: str, host: str | None = None,
                    expect_nonce: str | None = None) -> InstallResult:
    """Install a package into the host keystore (see the module docstring); one transaction.

    :raises InputError: the package is not for this host or this request, older than the installed
        one, altered, signed by another CA, or lacks a key for one of its enclaves — nothing installed.
    :raises KeystoreError: the keystore cannot be read or changed, or the package's CA is not the pinned one.
    """
    package = read_package(data, pinned, pinned_path, now, source)
    if package.kind == "crl" and _unchanged(keystore.layout, package):
        state = read_host_state(keystore.layout)
        return InstallResult(_check_addressed(package, state, host, now, expect_nonce, source), package.kind,
                             (), (), 0, dict(package.refused))
    with keystore.transaction(now, "host_install", needs_ca=False, host_keystore=True) as tx:
        state = read_host_state(tx.live)
        this_host = _check_addressed(package, state, host, now, expect_nonce, source)
        tx.stage_keystore()
        changed, removed, written = _apply_tree(tx, package, source)
        changed |= _place_keys(tx, package, source)
        _check_pinned(tx.layout, pinned)
        for enclave in removed:  # keys of enclaves no longer on this host leave it entirely
            remove_tree(enclave_history_dir(tx.layout, enclave), ignore_errors=True)
        tx.write_file(tx.layout.host_file, HostState(this_host, installed=package.created).to_bytes(), 0o600)
        tx.replace_manifest(Manifest(created=package.created, policy=package.policy, enclaves=package.records))
        tx.audit("host_install", "/", {"host": this_host, "kind": package.kind, "created": iso_utc(package.created),
                                       "changed": ",".join(sorted(changed)), "removed": ",".join(sorted(removed))})
        tx.adopt_integrity(package.integrity)
    return InstallResult(this_host, package.kind, tuple(sorted(changed)), tuple(sorted(removed)), written,
                         dict(package.refused))
