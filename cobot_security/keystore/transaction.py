"""The one way to change a keystore: a transaction that locks, unlocks the CAs, stages and commits.

Every operation that changes a keystore (issue, rotate, revoke, refresh the CRL, roll back, renew
a CA) runs inside one :class:`KeystoreTransaction`::

    with keystore.transaction(now, "rotate") as tx:
        staged = tx.stage_enclave("/cell/arm", archive=True)   # build files in staged.directory
        ...
        tx.audit("rotate", "/cell/arm", {...})

Entering takes the keystore lock once, repairs what an interrupted transaction left behind
(:mod:`recovery <cobot_security.keystore.recovery>`) and, when the operation needs them,
decrypts the CA keys once — a wrong passphrase fails before anything is written.  Leaving commits
in this order, each step only after the previous one is durable:

1. one ``syncfs`` makes every staged file durable (no fsync per file: issue 11);
2. staged enclave directories are exchanged with the live ones, one ``renameat2`` each, and each
   replaced version is moved (not copied) into the history;
3. the typed manifest is written once, the audit records are appended in one write, the signed
   integrity manifest is written once: the current one (its signature verified first) with only
   the paths this change wrote, linked or switched in read again (after an interruption also the
   enclaves that one switched in and the CRL), so that a file tampered with outside the change
   stays flagged; over a manifest that is missing or does not verify the whole tree is hashed,
   and that re-basing is audited;
4. a last ``syncfs``, then the journal (``.cobot_security/transaction.json``, written durably
   before the first change) is removed.

A crash anywhere leaves each enclave fully old or fully new, and the journal tells the next
transaction to repair the metadata and audit the interruption.  A transaction that fails inside
its block still commits what it already switched in (the integrity manifest then matches the
disk), discards what was only staged, and re-raises.  Changes spanning ``public/`` and
``enclaves/`` at once (CA renewal) use :meth:`KeystoreTransaction.stage_keystore`: the whole
keystore is staged beside the live one and exchanged in one step.  Directories of our own records
that must change as a whole (the authority's view of a host) use
:meth:`KeystoreTransaction.stage_directory`.

A *host keystore* (``host_keystore=True``, docs/deployment.md) holds no CA key: it changes only
through :meth:`~KeystoreTransaction.stage_keystore`, and instead of signing its integrity manifest
the transaction adopts the one the authority signed for the staged tree
(:meth:`~KeystoreTransaction.adopt_integrity`), after checking that it describes that tree exactly.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore.audit import AuditEvent, append_audit
from cobot_security.keystore.authority import CaKeys, load_ca_keys
from cobot_security.keystore.enclaves import read_enclave_records
from cobot_security.keystore.history import (
    DEFAULT_RETENTION,
    archive_tree,
    prune_history,
)
from cobot_security.keystore.integrity import (
    SignedIntegrity,
    compare_integrity,
    hash_keystore_files,
    interrupted_scope,
    parse_integrity,
    rehash_changed,
    signed_files,
    write_integrity_manifest,
    write_signed_integrity,
)
from cobot_security.keystore.layout import CERT, KeystoreLayout
from cobot_security.keystore.manifest import EnclaveRecord, Manifest, read_manifest
from cobot_security.keystore.policy_snapshot import RememberedPolicy, remember_policy
from cobot_security.keystore.recovery import adopt_nested, recover_interrupted
from cobot_security.tree import remove_tree, walk_tree

#: Mode of an enclave directory (it holds key.pem) and of our staging directories.
ENCLAVE_DIR_MODE = 0o700
#: Mode of the intermediate namespace directories under enclaves/ (no keys in them).
NAMESPACE_DIR_MODE = 0o755


@dataclass
class StagedEnclave:
    """One enclave directory being rebuilt aside; switched in at :meth:`KeystoreTransaction.swap_staged`."""

    path: str
    directory: Path  #: write the new files here
    target: Path
    archive: bool  #: move the replaced version into the history
    record: EnclaveRecord | None = None  #: the manifest entry, applied once switched in
    events: list[AuditEvent] = field(default_factory=list)  #: audited once switched in
    previous_serial: str | None = None  #: serial of the version being replaced, when readable
    swapped: bool = False
    archived: str | None = None  #: history version name of the replaced files


class SwapFailed(KeystoreError):
    """Switching a staged enclave in failed; ``done`` were switched in before it."""

    def __init__(self, enclave: str, done: tuple[StagedEnclave, ...], cause: OSError) -> None:
        self.enclave = enclave
        self.done = done
        super().__init__(cause.filename or enclave, f"cannot switch enclave {enclave} in: {cause.strerror or cause}")


def _wrap(exc: OSError, action: str, path: Path | str) -> KeystoreError:
    return KeystoreError(exc.filename or path, f"cannot {action}: {exc.strerror or exc}")


class KeystoreTransaction:
    """See the module docstring.  Create with :meth:`Keystore.transaction`."""

    def __init__(self, layout: KeystoreLayout, now: _dt.datetime, operation: str, *,
                 passphrase: bytes | None, lock_timeout_s: float, needs_ca: bool,
                 retention: int = DEFAULT_RETENTION, host_keystore: bool = False,
                 remembered: RememberedPolicy | None = None) -> None:
        """Prepare a transaction; nothing happens before ``with``.

        :raises InputError: ``retention`` below 1.
        """
        if retention < 1:
            raise InputError(None, "retention", "at least 1 version", str(retention))
        self.live = layout
        self.now = now
        self.operation = operation
        self._passphrase = passphrase
        self._needs_ca = needs_ca
        self.retention = retention
        self._lock = atomic.KeystoreLock(layout.lock, lock_timeout_s)
        self._ca: CaKeys | None = None
        self._staged: list[StagedEnclave] = []
        self._events: list[AuditEvent] = []
        self._journal = False
        self._files_changed = False
        self._manifest_changed = False
        self._staged_root: Path | None = None
        self._extra_locks: list[atomic.KeystoreLock] = []
        self._read_version = 0
        self._host_keystore = host_keystore
        self._adopted: SignedIntegrity | None = None
        self._staged_dirs: list[tuple[Path, Path]] = []
        # What the integrity manifest re-reads at commit (paths from the root); the rest keeps its
        # signed digest.  After an interruption also what it may have switched in (interrupted_scope).
        self._rehash_files: set[str] = set()
        self._rehash_dirs: set[str] = set()
        self._recovered = False
        self._recovery_scope: tuple[set[str], set[str]] = (set(), set())
        # The policy as the command read it: left as the keystore's snapshot once this change has
        # committed with the CA unlocked (a change that fails leaves the keystore as it was).
        self._remembered = remembered
        self._signed: dict[str, str] | None | bool = False  # the verified previous manifest's files, once read
        self.manifest = Manifest()

    # -- the parts a caller uses ---------------------------------------------------------------

    @property
    def layout(self) -> KeystoreLayout:
        """Where changes are written: the live keystore, or the staged copy after :meth:`stage_keystore`."""
        return KeystoreLayout(self._staged_root) if self._staged_root is not None else self.live

    @property
    def ca(self) -> CaKeys:
        """The CA pairs, decrypted when the transaction began."""
        if self._ca is None:
            self._ca = load_ca_keys(self.layout, self._passphrase)
        return self._ca

    def reload_ca(self) -> CaKeys:
        """Read the CA pairs again from :attr:`layout` (after writing a renewed CA certificate)."""
        self._ca = None
        return self.ca

    def begin_changes(self) -> None:
        """Write the journal (durably) before the first change; idempotent."""
        if self._journal:
            return
        document = {"operation": self.operation, "started": iso_utc(self.now), "pid": os.getpid()}
        try:
            atomic.make_private_dir(self.live.meta_dir)
            atomic.write_bytes_atomic(self.live.journal, (json.dumps(document, sort_keys=True) + "\n").encode(),
                                      0o600)
        except OSError as exc:
            raise _wrap(exc, "start the keystore change", self.live.journal) from exc
        self._journal = True

    def make_namespace_dirs(self, path: str) -> Path:
        """Create the missing intermediate directories of enclave ``path``; return its directory."""
        layout = self.layout
        directory = layout.enclave_dir(path)
        current = layout.enclaves_dir
        try:
            for token in path[1:].split("/")[:-1]:
                current = current / token
                if not current.is_dir():
                    self.begin_changes()
                    atomic.make_dir(current, NAMESPACE_DIR_MODE)
                    self._files_changed = True
        except OSError as exc:
            raise _wrap(exc, f"create the directories of enclave {path}", current) from exc
        return directory

    def stage_enclave(self, path: str, *, archive: bool) -> StagedEnclave:
        """A new hidden directory beside enclave ``path`` to build its next version in."""
        self.begin_changes()
        target = self.make_namespace_dirs(path)
        try:
            staged = target.parent / f".{target.name}{atomic.STAGING_MARK}{os.urandom(6).hex()}"
            os.mkdir(staged, ENCLAVE_DIR_MODE)
            atomic.set_mode(staged, ENCLAVE_DIR_MODE)
        except OSError as exc:
            raise _wrap(exc, f"stage enclave {path}", target) from exc
        entry = StagedEnclave(path, staged, target, archive)
        self._staged.append(entry)
        return entry

    def discard(self, entry: StagedEnclave) -> None:
        """Drop a staged enclave that will not be switched in (its build failed)."""
        self._staged.remove(entry)
        remove_tree(entry.directory, ignore_errors=True)

    def write_file(self, path: Path, data: bytes, mode: int) -> None:
        """Replace one file atomically (made durable at commit).

        A file of a staged enclave or keystore is made durable with the batch before its switch; a
        live file replaced in place gets its bytes synced before the rename (docs/durability.md).
        """
        self.begin_changes()
        staged = any(path.is_relative_to(s.directory) for s in self._staged) or (
            self._staged_root is not None and path.is_relative_to(self._staged_root))
        try:
            atomic.write_bytes_atomic(path, data, mode, durable=False, sync_data=not staged)
        except OSError as exc:
            raise _wrap(exc, "write", path) from exc
        if self._covered(path) and not any(path.is_relative_to(s.directory) for s in self._staged):
            self.note_changed(path)

    def note_changed(self, path: Path) -> None:
        """Record that covered file ``path`` (under :attr:`layout`) was written, linked or removed in
        this change, for the integrity manifest (:meth:`write_file` does it itself)."""
        self._rehash_files.add(path.relative_to(self.layout.root).as_posix())
        self._files_changed = True

    def _covered(self, path: Path) -> bool:
        """Whether ``path`` is under public/ or enclaves/ (what the integrity manifest covers)."""
        layout = self.layout
        return path.is_relative_to(layout.public_dir) or path.is_relative_to(layout.enclaves_dir)

    def stage_directory(self, target: Path) -> Path:
        """A hidden copy of our records' directory ``target`` (hard links; empty when absent) to change aside.

        The copy replaces ``target`` in one exchange when the staged enclaves are switched in; files
        in it must be replaced (:meth:`write_file`), never edited in place (they are links).
        """
        self.begin_changes()
        staged = target.parent / f".{target.name}{atomic.STAGING_MARK}{os.urandom(6).hex()}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if target.is_dir() and not target.is_symlink():
                _clone_tree(target, staged, copy=set(), skip=set())
            else:
                os.mkdir(staged, 0o700)
        except OSError as exc:
            remove_tree(staged, ignore_errors=True)
            raise _wrap(exc, "stage", target) from exc
        self._staged_dirs.append((staged, target))
        return staged

    def adopt_integrity(self, signed: SignedIntegrity) -> None:
        """Use ``signed`` (by the authority) as this host keystore's integrity manifest; call it last.

        :raises KeystoreError: not a host keystore transaction, not staged, or the manifest does
            not describe the staged tree exactly (names the first differences).
        """
        if not self._host_keystore or self._staged_root is None:
            raise KeystoreError(self.live.root, "expected a host keystore change staged with stage_keystore")
        parsed = parse_integrity(signed.data)
        if parsed is None or parsed[1] is None:
            raise KeystoreError(self.live.integrity_json, "expected a host integrity manifest naming its host")
        result = compare_integrity(parsed[0], hash_keystore_files(self.layout, exclude_keys=True), parsed[1])
        if not result.ok:
            parts = [f"{label}: {', '.join(names[:3])}" for label, names in
                     (("modified", result.modified), ("missing", result.missing), ("unexpected", result.unexpected))
                     if names]
            raise KeystoreError(self.live.root, "the authority's integrity manifest does not describe the "
                                                "installed tree (" + "; ".join(parts) + ")")
        self._adopted = signed

    def audit(self, event: str, subject: str, details: Mapping[str, str]) -> None:
        """Record an audit event, appended at commit with the others."""
        self._events.append(AuditEvent(event, subject, dict(details)))

    def replace_manifest(self, manifest: Manifest) -> None:
        """Replace the whole manifest (a host keystore takes the records the authority sent)."""
        self.manifest = manifest
        self._manifest_changed = True

    def set_record(self, path: str, record: EnclaveRecord) -> None:
        """Replace ``path``'s manifest entry (written at commit)."""
        self.manifest = self.manifest.with_enclave(path, record)
        self._manifest_changed = True

    def swap_staged(self) -> list[StagedEnclave]:
        """Make the staged enclaves durable, then switch each in; return those switched now.

        :raises SwapFailed: one could not be switched in; those before it were (and are kept),
            those after it are discarded.
        """
        pending = [s for s in self._staged if not s.swapped]
        if not pending and not self._staged_dirs:
            return []
        try:
            atomic.sync_filesystem(self.layout.root)
            while self._staged_dirs:
                staged, target = self._staged_dirs.pop(0)
                old = atomic.swap_into_place(staged, target, durable=False)
                if old is not None:
                    remove_tree(old)
        except OSError as exc:
            raise _wrap(exc, "make the staged changes durable", self.layout.root) from exc
        done: list[StagedEnclave] = []
        for entry in pending:
            try:
                self._switch(entry)
            except OSError as exc:
                for later in pending[len(done) + 1:]:
                    self.discard(later)
                self.discard(entry)
                raise SwapFailed(entry.path, tuple(done), exc) from exc
            done.append(entry)
        return done

    def stage_keystore(self) -> KeystoreLayout:
        """Stage the whole keystore beside the live one; later writes go there (see :attr:`layout`).

        Unchanged files are hard links to the live ones (the lock file too, so the lock stays one
        inode); the audit log is copied, so records appended to the stage stay invisible until the
        exchange.  Committing exchanges the two roots in one ``renameat2``.
        """
        self.begin_changes()
        if self.live.incidents_dir.is_dir():
            # Incident records are written by the supervisor under their own lock; hold it so
            # that none is written to the live tree after it was cloned.
            incidents = atomic.KeystoreLock(self.live.incidents_dir / "lock", self._lock.timeout_s)
            incidents.acquire()
            self._extra_locks.append(incidents)
        root = self.live.root
        staged = root.parent / f".{root.name}{atomic.STAGING_MARK}{os.urandom(6).hex()}"
        try:
            _clone_tree(root, staged, copy={self.live.audit_log, self.live.audit_head}, skip={self.live.journal})
        except OSError as exc:
            remove_tree(staged, ignore_errors=True)
            raise _wrap(exc, "stage the keystore", staged) from exc
        self._staged_root = staged
        self._files_changed = True
        self._ca = None
        return self.layout

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> KeystoreTransaction:
        """Lock, repair an interrupted predecessor, unlock the CAs when needed, read the manifest."""
        self._lock.acquire()
        try:
            repaired = recover_interrupted(self.live)
            on_disk = read_manifest(self.live)
            self._read_version = on_disk.version
            self.manifest = on_disk.migrated(self.live) if on_disk.version else on_disk
            if repaired is not None:
                # The interrupted change may have switched enclaves in without recording them:
                # the manifest catches up with the disk, the interruption is audited and the
                # integrity manifest is signed over a tree where each enclave is old or new.
                self.begin_changes()
                self._resync_manifest()
                self.audit("recover", "/", repaired)
                self._recovered = True
                self._scope_interruption()
                # A host keystore changes only by whole-tree exchanges: the live tree and its
                # (authority-signed) manifest are both old or both new, nothing to re-sign.
                self._files_changed = not self._host_keystore
            if self._needs_ca:
                _ = self.ca
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Commit (what was switched in, when the block failed), then unlock.

        :raises KeystoreError: a host keystore change without the authority's manifest (nothing
            of it is kept).
        """
        unsigned = None
        if exc is None and self._host_keystore and self._files_changed and self._adopted is None:
            unsigned = KeystoreError(self.live.root, "a host keystore holds no CA key: its integrity manifest must "
                                                     "come signed by the authority (host install)")
        try:
            if exc is None and unsigned is None:
                self.swap_staged()
            else:
                for entry in [s for s in self._staged if not s.swapped]:
                    self.discard(entry)
                for staged, _target in self._staged_dirs:
                    remove_tree(staged, ignore_errors=True)
                self._staged_dirs = []
                if self._staged_root is not None:
                    remove_tree(self._staged_root, ignore_errors=True)
                    self._staged_root = None
                    # The live tree was never touched: nothing of it to re-read or re-sign (unless a
                    # recovery at the start asked for it), and CA keys loaded from the staged tree
                    # (a renewal's) went with it.
                    self._rehash_files.clear()
                    self._rehash_dirs.clear()
                    self._files_changed = self._recovered and not self._host_keystore
                    self._ca = None
            self._commit()
            remembered, ca = self._remembered, self._ca
            if exc is None and unsigned is None and remembered is not None and ca is not None \
                    and not remembered.from_snapshot:
                remember_policy(self.live, remembered, ca.permissions)
        finally:
            for lock in reversed(self._extra_locks):
                lock.release()
            self._lock.release()
        if unsigned is not None:
            raise unsigned

    # -- internals -----------------------------------------------------------------------------

    def _switch(self, entry: StagedEnclave) -> None:
        old = atomic.swap_into_place(entry.directory, entry.target, durable=False)
        entry.swapped = self._files_changed = True
        self._rehash_dirs.add(entry.target.relative_to(self.layout.root).as_posix())
        if old is not None:
            adopt_nested(old, entry.target)
            if entry.archive and (old / CERT).is_file():
                entry.archived = archive_tree(self.layout, entry.path, old, self.now)
                prune_history(self.layout, entry.path, self.retention)
            else:
                remove_tree(old)
        if entry.record is not None:
            self.set_record(entry.path, entry.record)
        self._events.extend(entry.events)

    def _resync_manifest(self) -> None:
        """After an interruption: take serial and expiry of every enclave from its certificate on disk."""
        for path, record in read_enclave_records(self.live, self.manifest).items():
            self.set_record(path, record)

    def _commit(self) -> None:
        """Manifest, audit records and integrity once; durable; switch a staged keystore; drop the journal.

        Only records appended (nothing else changed, e.g. a rollover's audit entry): the integrity
        manifest, which does not cover our own records, is left as it is and no CA key is needed.
        """
        layout = self.layout
        write_manifest = self._manifest_changed or self.manifest.version != self._read_version
        if not (write_manifest or self._events or self._files_changed or self._journal):
            return
        try:
            integrity = None
            if self._files_changed and not self._host_keystore:
                integrity = self._integrity_files()
            if write_manifest:
                atomic.make_private_dir(layout.meta_dir)
                atomic.write_bytes_atomic(layout.manifest, self.manifest.to_bytes(), 0o600, durable=False)
            if self._events:
                append_audit(layout, self._events, self.now, durable=False)
                self._events = []
            if self._files_changed and self._host_keystore:
                if self._adopted is not None:  # else __exit__ refuses the change
                    write_signed_integrity(layout, self._adopted, durable=False)
            elif self._files_changed:
                ca = self.ca
                write_integrity_manifest(layout, ca.permissions.cert, ca.permissions.key, self.now, durable=False,
                                         files=integrity)
            atomic.sync_filesystem(layout.root)
            if self._staged_root is not None:
                self._exchange_roots()
            if self._journal:
                os.unlink(self.live.journal)
                atomic.fsync_dir(self.live.meta_dir)
                self._journal = False
        except OSError as exc:
            raise _wrap(exc, f"commit the keystore change ({self.operation})", layout.root) from exc

    def _integrity_files(self) -> dict[str, str] | None:
        """The files of the next integrity manifest: the current signed manifest with what this change
        touched (and, after an interruption, what that one may have switched in) re-read, so that a
        file tampered with elsewhere stays flagged.  None (hash the whole tree) when the current
        manifest is missing or does not verify; that re-basing is audited, as it signs what is found."""
        previous = self._previous_signed()
        if previous is None:
            self._events.append(AuditEvent("integrity_rebased", "/", {
                "reason": "the integrity manifest was missing or did not verify; signed over the tree as found"}))
            return None
        files, directories = self._recovery_scope
        return rehash_changed(self.layout, previous, files | self._rehash_files, directories | self._rehash_dirs)

    def _previous_signed(self) -> dict[str, str] | None:
        """The files of the live keystore's signed manifest (verified once: under the lock nothing
        else changes it, and this change writes it only at commit)."""
        if self._signed is False:
            self._signed = signed_files(self.live)
        return self._signed  # type: ignore[return-value]

    def _scope_interruption(self) -> None:
        """After an interruption, before any change of ours: what it may have switched in (read again
        at commit, and audited), taken against the signed manifest (none: the commit re-bases)."""
        previous = self._previous_signed()
        if previous is None:
            return
        files, directories = interrupted_scope(self.live, previous)
        self._recovery_scope = (files, directories)
        if directories:
            shown = sorted(directories)
            self.audit("integrity_reread", "/", {
                "reason": "enclaves switched in by the interrupted change", "count": str(len(shown)),
                "enclaves": ", ".join(shown[:20]) + (", ..." if len(shown) > 20 else "")})

    def _exchange_roots(self) -> None:
        staged, root = self._staged_root, self.live.root
        assert staged is not None
        if not atomic.exchange_paths(staged, root):
            raise KeystoreError(root, "expected a file system supporting renameat2(RENAME_EXCHANGE) "
                                      "to switch the keystore in one step, got none")
        atomic.fsync_dir(root.parent)
        self._staged_root = None
        # The old keystore (with its journal) is now at ``staged``.
        remove_tree(staged)
        self._journal = False


def _clone_tree(source: Path, target: Path, *, copy: set[Path], skip: set[Path]) -> None:
    """``target`` as a copy of ``source``: directories made, files hard-linked, links re-created."""
    # Imported here: only whole-keystore changes copy (shutil's import costs every other change ~4 ms).
    import shutil

    os.mkdir(target, 0o700)
    shutil.copymode(source, target)
    for current, dirs, files in walk_tree(source):
        here = Path(current)
        there = target / here.relative_to(source)
        for name in dirs:
            entry = here / name
            if entry.is_symlink():
                os.symlink(os.readlink(entry), there / name)
            else:
                os.mkdir(there / name, 0o700)
                shutil.copymode(entry, there / name)
        for name in files:
            entry = here / name
            if entry in skip:
                continue
            if entry.is_symlink():
                os.symlink(os.readlink(entry), there / name)
            elif entry in copy:
                shutil.copy2(entry, there / name, follow_symlinks=False)
            else:
                os.link(entry, there / name, follow_symlinks=False)
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
