"""A signed manifest of every public keystore artifact, so that tampering on disk is detectable.

``.cobot_security/integrity.json`` maps each file under ``public/`` and ``enclaves/`` to its SHA-256
(``"link:<target>"`` for a symlink); ``integrity.json.p7s`` is the same JSON signed (S/MIME) by
the permissions CA.  The check trusts only the signed copy: the signature is verified against
``public/permissions_ca.cert.pem`` before any hash in it is compared.  ``integrity.json.sig`` is a
raw signature by the same CA over the readable copy (prefixed with :data:`RAW_SIGNATURE_CONTEXT`,
so that no other document the CA signs can stand for a manifest), verified in process by every
keystore change before it carries the signed digests over (:func:`signed_files`):
``openssl smime -verify`` cost ~20 ms of each change (issue 11).  When it is absent or does not
verify, the S/MIME signature decides, as it always did.  The integrity check (the health probe,
``doctor``) always verifies the S/MIME signature, so a tampered ``.p7s`` stays reported.  ``private/`` (CA keys may
be absent on a deployed host) and our own ``.cobot_security/`` (lock, records) are not covered.

A *host keystore* (docs/deployment.md) holds no CA key, so it cannot sign its own manifest: the
authority computes it over the public tree it ships to that host and signs it; the document then
names the ``host`` and leaves every enclave ``key.pem`` out (keys born on the host never reach the
authority; the key-modes probe covers them).  It verifies with the public certificates alone.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import KeystoreError
from cobot_security.json_input import parse_json
from cobot_security.keystore import pki, smime
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import CERT, CRL, KEY, KeystoreLayout
from cobot_security.keystore.pki import PrivateKey
from cobot_security.keystore.signed_json import sign_bytes, verify_bytes
from cobot_security.tree import walk_tree

INTEGRITY_VERSION = 1
#: What the raw signature covers in front of the manifest's bytes (domain separation).
RAW_SIGNATURE_CONTEXT = b"cobot_security integrity manifest/1\n"
LINK_PREFIX = "link:"
_COVERED_DIRS = ("public", "enclaves")


@dataclass(frozen=True)
class IntegrityResult:
    """Outcome of :func:`check_integrity`; hashes are only compared when ``signature_ok``."""

    signature_ok: bool
    modified: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    problem: str | None = None
    host: str | None = None  #: the host a host keystore's signed manifest names

    @property
    def ok(self) -> bool:
        """True when the signature verifies and the keystore matches the manifest exactly."""
        return (self.signature_ok and self.problem is None
                and not (self.modified or self.missing or self.unexpected))


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(65536), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_keystore_files(layout: KeystoreLayout, *, exclude_keys: bool = False) -> dict[str, str]:
    """Every file and symlink under public/ and enclaves/, relative to the root, with its digest.

    Symlinks (to files or directories) are recorded by target and never followed; hidden names
    are included, so nothing can be slipped in under a dot name.  Other file types (fifos,
    sockets) are recorded as ``"special"`` so that they show up as unexpected.  With
    ``exclude_keys`` (a host keystore) regular ``key.pem`` files of enclaves are left out.
    The walk reads each directory once (``scandir``: the entry types come with the listing).
    """
    entries: dict[str, str] = {}
    root = str(layout.root)
    for top in _COVERED_DIRS:
        base = os.path.join(root, top)
        if os.path.islink(base):
            entries[top] = LINK_PREFIX + os.readlink(base)
        elif os.path.isdir(base):
            _hash_tree(base, top, entries, exclude_keys=exclude_keys and top == "enclaves")
        elif os.path.lexists(base):
            entries[top] = "special"
    return dict(sorted(entries.items()))


def _entry_value(entry: os.DirEntry[str], *, exclude_keys: bool) -> str | None:
    """The manifest value of one listed entry: digest, link target or ``special``; None for a
    directory (walked by the caller) or an excluded ``key.pem``."""
    if entry.is_symlink():
        return LINK_PREFIX + os.readlink(entry.path)
    if entry.is_dir(follow_symlinks=False):
        return None
    if entry.is_file(follow_symlinks=False):
        return None if exclude_keys and entry.name == KEY else _sha256(entry.path)
    return "special"


def _hash_tree(directory: str, rel: str, entries: dict[str, str], *, exclude_keys: bool) -> None:
    """Add the files and links under ``directory`` (``rel`` from the root) to ``entries``.

    Iterative (a stack, not recursion): a planted chain of thousands of nested directories is
    listed as unexpected, never a RecursionError.
    """
    pending = [(directory, rel)]
    while pending:
        here, here_rel = pending.pop()
        with os.scandir(here) as listing:
            children = list(listing)
        for child in children:
            name = f"{here_rel}/{child.name}"
            value = _entry_value(child, exclude_keys=exclude_keys)
            if value is not None:
                entries[name] = value
            elif child.is_dir(follow_symlinks=False):
                pending.append((child.path, name))


def _real_dir(root: str, rel: str) -> str | None:
    """``root/rel`` when each of its components is a directory and none a symlink, else None."""
    here = root
    for part in rel.split("/") if rel else ():
        here = os.path.join(here, part)
        if os.path.islink(here) or not os.path.isdir(here):
            return None
    return here


def _path_value(root: str, rel: str) -> str | None:
    """The manifest value of ``rel`` as it is now; None when absent, a directory, or below a symlink
    (whose target is recorded by its own entry; nothing is read through it)."""
    parent, _, name = rel.rpartition("/")
    here = _real_dir(root, parent)
    if here is None:
        return None
    path = os.path.join(here, name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return LINK_PREFIX + os.readlink(path)
    if stat.S_ISDIR(st.st_mode):
        return None
    return _sha256(path) if stat.S_ISREG(st.st_mode) else "special"


def rehash_changed(layout: KeystoreLayout, signed: dict[str, str], files: set[str],
                   directories: set[str]) -> dict[str, str]:
    """``signed`` (the previous, verified manifest) with only what a change touched taken from the disk.

    ``files`` are paths (from the root) written or linked; ``directories`` are enclave directories
    switched in, whose direct entries are taken (nested enclaves below them are not).  Every other
    entry keeps its signed digest, and nothing else is added: a file modified, removed or planted
    outside the change stays modified, missing or unexpected after it, instead of being signed as
    if it belonged (a change never launders a tampering it did not make).
    """
    root = str(layout.root)

    def touched(rel: str) -> bool:
        return rel in files or rel.rpartition("/")[0] in directories

    result = {rel: value for rel, value in signed.items() if not touched(rel)}
    for rel in files:
        value = _path_value(root, rel)
        if value is not None:
            result[rel] = value
    for rel in directories:
        here = _real_dir(root, rel)
        if here is None:
            continue
        with os.scandir(here) as listing:
            for entry in listing:
                value = _entry_value(entry, exclude_keys=False)
                if value is not None:
                    result[f"{rel}/{entry.name}"] = value
    return dict(sorted(result.items()))


def interrupted_scope(layout: KeystoreLayout, signed: dict[str, str]) -> tuple[set[str], set[str]]:
    """What an interrupted change may have written, as ``(files, directories)`` for :func:`rehash_changed`.

    A change switches enclave directories in whole (each with a new certificate) and writes the CRL
    and the enclaves' ``crl.pem`` links in place; everything else it stages with the whole keystore,
    which is switched in with its manifest or not at all.  So: every enclave directory whose
    ``cert.pem`` is not the signed one, every enclave's ``crl.pem`` and ``public/crl.pem``.  A
    journal planted to look like an interruption therefore re-reads no tampered file but those.
    """
    root = str(layout.root)
    files: set[str] = {"public/crl.pem"}
    directories: set[str] = set()
    top = os.path.join(root, "enclaves")
    if _real_dir(root, "enclaves") is None:
        return files, directories
    for here, _dirs, names in walk_tree(top):
        if CERT not in names:
            continue
        rel = os.path.relpath(here, root).replace(os.sep, "/")
        files.add(f"{rel}/{CRL}")
        if _path_value(root, f"{rel}/{CERT}") != signed.get(f"{rel}/{CERT}"):
            directories.add(rel)
    return files, directories


def _raw_verified(layout: KeystoreLayout) -> object | None:
    """The readable copy, parsed, when ``integrity.json.sig`` verifies over it by the permissions CA
    valid at the manifest's ``created``; None otherwise (the S/MIME signature decides)."""
    try:
        if not os.path.lexists(layout.integrity_sig):
            return None
        data = read_keystore_file(layout, layout.integrity_json)
        signature = read_keystore_file(layout, layout.integrity_sig)
        cert = pki.load_certificate(read_keystore_file(layout, layout.permissions_ca_cert), layout.permissions_ca_cert)
        if not verify_bytes(RAW_SIGNATURE_CONTEXT + data, signature, cert):
            return None
        document = parse_json(data)
    except (OSError, KeystoreError, ValueError):
        return None
    at = _created(document)
    return document if at is not None and cert.not_valid_before_utc <= at <= cert.not_valid_after_utc else None


def signed_files(layout: KeystoreLayout) -> dict[str, str] | None:
    """The files of the keystore's current manifest once a signature by the permissions CA verifies
    over it, the raw one first (None: absent, not verifying, not the expected document, or a host
    keystore's)."""
    document = _raw_verified(layout)
    if document is None:
        try:
            p7s = layout.integrity_p7s.read_bytes()
            document = parse_json(smime.verify_smime(p7s, layout.permissions_ca_cert, at=_signed_time(p7s),
                                                     source=layout.integrity_p7s))
        except (OSError, KeystoreError, ValueError):
            return None
    parsed = _integrity_fields(document)
    return parsed[0] if parsed is not None and parsed[1] is None else None


@dataclass(frozen=True)
class SignedIntegrity:
    """An integrity manifest as written: the readable JSON, its S/MIME signature (which holds it)
    and, when signed here, the raw signature of the JSON (``None`` in a manifest a host received)."""

    data: bytes
    p7s: bytes
    raw: bytes | None = None


def sign_integrity(files: dict[str, str], permissions_ca_cert: x509.Certificate, permissions_ca_key: PrivateKey,
                   now: _dt.datetime, *, host: str | None = None) -> SignedIntegrity:
    """The manifest of ``files`` (path → digest) signed by the permissions CA; ``host`` for a host keystore."""
    document: dict[str, object] = {"version": INTEGRITY_VERSION, "created": iso_utc(now), "files": files}
    if host is not None:
        document["host"] = host
        document["keys"] = "excluded"
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return SignedIntegrity(data, smime.sign_smime(data, permissions_ca_cert, permissions_ca_key),
                           sign_bytes(RAW_SIGNATURE_CONTEXT + data, permissions_ca_key))


def write_integrity_manifest(
    layout: KeystoreLayout,
    permissions_ca_cert: x509.Certificate,
    permissions_ca_key: PrivateKey,
    now: _dt.datetime,
    *,
    durable: bool = True,
    files: dict[str, str] | None = None,
) -> None:
    """Write the manifest of ``files`` (default: every public artifact hashed now) plus its
    signature atomically.

    Call it while holding the keystore lock (or on a staged tree), after the last artifact write.

    :raises KeystoreError: the manifest cannot be written.
    """
    files = hash_keystore_files(layout) if files is None else files
    signed = sign_integrity(files, permissions_ca_cert, permissions_ca_key, now)
    write_signed_integrity(layout, signed, durable=durable)


def write_signed_integrity(layout: KeystoreLayout, signed: SignedIntegrity, *, durable: bool = True) -> None:
    """Write a signed manifest (made here, or by the authority for a host keystore) atomically.

    :raises KeystoreError: the manifest cannot be written.
    """
    data, signature = signed.data, signed.p7s
    try:
        atomic.make_private_dir(layout.meta_dir)
        # The raw signature goes first and comes back last: it never stands beside a JSON copy
        # it was not made for (a stale one would only fail and leave the verdict to the S/MIME).
        if os.path.lexists(layout.integrity_sig):
            os.unlink(layout.integrity_sig)
        # The S/MIME signature holds the signed text itself; the .json is for people and the .sig.
        atomic.write_bytes_atomic(layout.integrity_p7s, signature, 0o644, durable=durable)
        atomic.write_bytes_atomic(layout.integrity_json, data, 0o644, durable=durable)
        if signed.raw is not None:
            # Not synced on its own: after a power cut a missing, empty or stale .sig fails to
            # verify and the S/MIME signature decides; the change's batch sync makes it durable.
            atomic.write_bytes_atomic(layout.integrity_sig, signed.raw, 0o644, durable=False, sync_data=False)
    except OSError as exc:
        raise KeystoreError(exc.filename or layout.meta_dir,
                            f"cannot write the integrity manifest: {exc.strerror or exc}") from exc


def _created(document: object) -> _dt.datetime | None:
    """A manifest document's ``created`` time (UTC when it names no offset), or None."""
    created = document.get("created") if isinstance(document, dict) else None
    try:
        value = _dt.datetime.fromisoformat(created)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=_dt.timezone.utc)


def _signed_time(p7s: bytes) -> _dt.datetime | None:
    """The manifest's ``created`` read WITHOUT trust: only used as the time to verify the CA at."""
    try:
        return _created(parse_json(smime.extract_smime_content(p7s)))
    except (KeystoreError, ValueError):
        return None


def _integrity_fields(document: object) -> tuple[dict[str, str], str | None] | None:
    """(files, host) of a parsed manifest, or None when it is not the expected document."""
    if not isinstance(document, dict):
        return None
    files = document.get("files")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return None
    host = document.get("host")
    if host is not None and not isinstance(host, str):
        return None
    return files, host


def parse_integrity(signed: bytes) -> tuple[dict[str, str], str | None] | None:
    """(files, host) of a signed manifest's text, or None when it is not the expected JSON."""
    try:
        return _integrity_fields(parse_json(signed))
    except ValueError:
        return None


def keystore_host(layout: KeystoreLayout) -> str | None:
    """The host a host keystore belongs to, read from the readable manifest copy WITHOUT trust.

    Used to scope the probes to the host's enclaves; :func:`check_integrity` (the integrity probe)
    verifies that the copy is the signed one.
    """
    try:
        parsed = parse_integrity(layout.integrity_json.read_bytes())
    except OSError:
        return None
    return parsed[1] if parsed is not None else None


def check_integrity(layout: KeystoreLayout, *, at: _dt.datetime | None = None) -> IntegrityResult:
    """Verify the manifest's signature by the permissions CA, then compare it with the disk.

    ``at`` is the time the CA's validity is judged at; by default the manifest's own creation
    time (the signature's validity, not the CA's expiry, is this check's question).  Problems are
    reported in the result, never raised.
    """
    p7s_path, json_path = layout.integrity_p7s, layout.integrity_json
    if not p7s_path.is_file():
        return IntegrityResult(False, problem=f"no integrity manifest ({p7s_path.relative_to(layout.root)})")
    try:
        p7s = p7s_path.read_bytes()
        signed = smime.verify_smime(p7s, layout.permissions_ca_cert, at=at or _signed_time(p7s), source=p7s_path)
    except KeystoreError as exc:
        return IntegrityResult(False, problem=f"manifest signature does not verify: {exc.problem}")
    except OSError as exc:
        return IntegrityResult(False, problem=f"cannot read the manifest signature: {exc.strerror or exc}")
    parsed = parse_integrity(signed)
    if parsed is None:
        return IntegrityResult(True, problem="signed manifest is not the expected JSON document")
    expected, host = parsed
    try:
        shown = parse_json(json_path.read_bytes())
    except (OSError, ValueError):
        shown = None
    if shown != parse_json(signed):
        # The readable copy was edited (or removed): it no longer matches what the CA signed.
        return IntegrityResult(False, problem=f"{json_path.relative_to(layout.root)} does not match its signature",
                               host=host)
    try:
        actual = hash_keystore_files(layout, exclude_keys=host is not None)
    except OSError as exc:  # e.g. a planted chain of directories deeper than PATH_MAX
        where = exc.filename if isinstance(exc.filename, str) else str(layout.root)
        return IntegrityResult(True, problem=f"cannot read the keystore tree at {where[:200]}: "
                                             f"{exc.strerror or exc}", host=host)
    return compare_integrity(expected, actual, host)


def compare_integrity(expected: dict[str, str], actual: dict[str, str], host: str | None = None) -> IntegrityResult:
    """The differences between a signed manifest's ``expected`` files and ``actual`` ones."""
    return IntegrityResult(
        signature_ok=True,
        modified=tuple(sorted(p for p in expected if p in actual and actual[p] != expected[p])),
        missing=tuple(sorted(p for p in expected if p not in actual)),
        unexpected=tuple(sorted(p for p in actual if p not in expected)),
        host=host,
    )
