"""Crash-safe file system primitives: write aside then rename, staged directories, and the lock.

Files are created with their final mode (keys 0600) through ``O_CREAT | O_EXCL`` and renamed over
their target; whole directories are built beside their target and switched in with one
``renameat2(RENAME_EXCHANGE)``, so readers see the old tree or the new one, never a mixture.

Durability comes in two forms: :func:`write_bytes_atomic` fsyncs each file (a one-off record),
while batched writers (a keystore transaction) pass ``durable=False`` or write into a staged
directory with :func:`write_new_file`, and make the whole batch durable with one
:func:`sync_filesystem` before the step that publishes it (a swap, a commit); docs/durability.md
gives the ordering argument.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from cobot_security.errors import KeystoreError, LockError
from cobot_security.tree import remove_tree

#: The names of our temporary entries: ``.<final name><mark><random hex>`` (recovery removes them).
STAGING_MARK = ".staging-"
TMP_MARK = ".tmp-"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (renames, creations) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes, mode: int, *, durable: bool = True, sync_data: bool = True) -> None:
    """Replace ``path`` with ``data``: temp file beside it with ``mode`` from creation, fsync, rename.

    The mode is applied with fchmod on the still-empty file so that the process umask cannot widen
    or narrow it; secret bytes are only written after the file already has its final mode.  With
    ``durable=False`` the directory is not fsynced (the caller's batch sync makes the rename
    durable), but the file's data still is, before the rename: a rename that reaches the disk
    before the bytes it names would leave an empty file after a power cut (docs/durability.md).
    Only a file inside a staged tree, which nobody reads before the batch sync that precedes its
    switch, may skip that too (``sync_data=False``).

    :raises OSError: when the directory is not writable (callers wrap it with their context).
    """
    tmp = path.parent / f".{path.name}{TMP_MARK}{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode & 0o600)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable or sync_data:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (it must not exist) with ``mode`` from creation and write ``data``, without fsync.

    For files of a directory that is being staged: nobody reads them before the directory is
    switched in, and the batch is made durable before that switch, so a temporary name and a
    rename would add nothing but system calls.

    :raises OSError: ``path`` exists (also as a link), or the disk refuses.
    """
    # Created with ``mode`` minus the umask, never wider than ``mode``; widened to exactly ``mode``
    # (only when the umask narrowed it) before a byte is written.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def make_dir(path: Path, mode: int) -> None:
    """Create ``path`` (parent must exist) or fix its mode; the mode is exact, whatever the umask."""
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not path.is_dir() or path.is_symlink():
            raise
    set_mode(path, mode)


def set_mode(path: Path, mode: int) -> None:
    """chmod ``path`` to ``mode`` unless it has it already (each chmod is a journalled metadata write)."""
    if stat.S_IMODE(os.stat(path).st_mode) != mode:
        os.chmod(path, mode)


def make_private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700 (or tighten an existing directory to 0700)."""
    make_dir(path, 0o700)


@contextlib.contextmanager
def staged_dir(parent: Path, final_name: str, mode: int = 0o700) -> Iterator[Path]:
    """Yield a new hidden directory in ``parent`` to build ``final_name`` in; removed on error.

    The name starts with '.', so it can never be taken for a ROS enclave (enclave tokens start
    with a letter or '_') and listings skip it.
    """
    staged = parent / f".{final_name}{STAGING_MARK}{secrets.token_hex(6)}"
    os.mkdir(staged, 0o700)
    os.chmod(staged, mode)
    try:
        yield staged
    except BaseException:
        remove_tree(staged, ignore_errors=True)
        raise


def _libc_function(name: str, argtypes: list[type], restype: type) -> Callable[..., int] | None:
    """A C library function by name, or None where the C library lacks it.

    The C library is already mapped into this process: ``dlopen(NULL)`` finds its symbols without
    ``ctypes.util.find_library``, which runs ldconfig in a subprocess (3 ms on every start-up).
    """
    try:
        func = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    func.argtypes = argtypes
    func.restype = restype
    return func  # type: ignore[no-any-return]


_RENAMEAT2 = _libc_function("renameat2", [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint],
                            ctypes.c_int)
_SYNCFS = _libc_function("syncfs", [ctypes.c_int], ctypes.c_int)


def sync_filesystem(path: Path) -> None:
    """Make every write on the file system holding ``path`` durable: one ``syncfs`` (``sync`` where absent).

    One call per batch replaces an fsync per file and per directory (issue 11: fsync was half of
    the wall time of creating a keystore).

    :raises OSError: the file system reports a write error.
    """
    if _SYNCFS is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def exchange_paths(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths with renameat2(RENAME_EXCHANGE); False if unsupported.

    :raises OSError: for failures other than "not supported here".
    """
    if _RENAMEAT2 is None:
        return False
    rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_into_place(staged: Path, target: Path, *, durable: bool = True) -> Path | None:
    """Move ``staged`` to ``target``; if ``target`` existed, return where the old tree now is.

    With an existing target the two are exchanged atomically (Linux renameat2), leaving the old
    tree at ``staged`` for the caller to delete or archive.  Where renameat2 is unavailable the old
    tree is renamed aside first: between the two renames ``target`` briefly does not exist.  With
    ``durable=False`` the parent directory is not fsynced (the caller syncs the batch).
    """
    old: Path | None
    if not os.path.lexists(target):
        os.rename(staged, target)
        old = None
    elif exchange_paths(staged, target):
        old = staged
    else:
        old = staged.with_name(staged.name + ".old")
        os.rename(target, old)
        os.rename(staged, target)
    if durable:
        fsync_dir(target.parent)
    return old


class KeystoreLock:
    """Exclusive ``flock`` on the keystore's lock file, held for one mutating operation.

    Use as a context manager.  A second holder (another process, or another open of the file in
    this process) polls until ``timeout_s`` and then raises :class:`LockError`.
    """

    _POLL_S = 0.05

    def __init__(self, path: Path, timeout_s: float = 30.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout_s``.

        :raises LockError: another holder kept it past the timeout.
        :raises KeystoreError: the lock file cannot be created or opened.
        """
        try:
            if not self.path.parent.is_dir():
                make_private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise KeystoreError(self.path, f"cannot open the keystore lock: {exc.strerror}") from None
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._read_holder(fd)
                    os.close(fd)
                    raise LockError(
                        self.path,
                        f"another cobot-security process holds the keystore lock (pid {holder}); "
                        "retry or wait",
                    ) from None
                time.sleep(self._POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @staticmethod
    def _read_holder(fd: int) -> str:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return text if text.isdigit() else "unknown"

    def release(self) -> None:
        """Drop the lock (idempotent); the file stays, so that later holders lock the same inode."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> KeystoreLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
