"""Issue many enclaves at once: keys, certificates and signatures computed in forked workers, in order.

:func:`issue_materials` yields the :class:`~cobot_security.keystore.enclaves.EnclaveMaterial` of
each enclave in the order given, so that the caller writes enclave ``i`` into its staged directory
while the workers compute the next ones.  Small batches are issued in this process: forking costs
more than it saves below :data:`PARALLEL_THRESHOLD` enclaves (measured in benchmarks/README.md).

The workers are ``fork`` children, one per usable core, each issuing every n-th enclave and
streaming pickled results through its own pipe.  The CA key pairs reach them in memory, inherited
through the fork: never written to a file, never pickled, never logged.  A worker dies with its
parent (``PR_SET_PDEATHSIG``), so that a killed command leaves no orphan holding the keystore
lock's descriptor.  Forking a process that runs other threads (an rclpy node, DDS) can deadlock the
child, so such a process issues serially.  A failure in a worker is raised in the parent at the
position of the failed enclave, after the materials before it were yielded, exactly as in serial.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import os
import pickle
import signal
from collections.abc import Generator, Sequence
from typing import BinaryIO, NoReturn

from cobot_security.errors import KeystoreError
from cobot_security.keystore.authority import CaKeys
from cobot_security.keystore.enclaves import EnclaveMaterial, issue_material
from cobot_security.policy.model import Enclave, WorkcellPolicy

#: Batches smaller than this are issued in this process (fork and pipes cost more than they save).
PARALLEL_THRESHOLD = 24
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def usable_cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def single_threaded() -> bool:
    """Whether this process runs one thread only (forking it is then safe)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def issue_materials(enclaves: Sequence[Enclave], policy: WorkcellPolicy, now: _dt.datetime, ca: CaKeys, *,
                    workers: int | None = None, threshold: int = PARALLEL_THRESHOLD
                    ) -> Generator[EnclaveMaterial, None, None]:
    """Yield the issued material of each of ``enclaves``, in order (see the module docstring).

    ``workers`` defaults to the usable cores.  Close the iterator (or let it finish) to reap the
    workers; a ``with contextlib.closing(...)`` block does it on every path.

    :raises KeystoreError: an enclave could not be issued (raised at its position), or a worker
        ended without a result.
    :raises InputError: an enclave's name or grants are refused (raised at its position).
    """
    count = min(usable_cores() if workers is None else workers, len(enclaves))
    if count < 2 or len(enclaves) < threshold or not single_threaded():
        for enclave in enclaves:
            yield issue_material(enclave, policy, now, ca)
        return
    yield from _issue_forked(enclaves, policy, now, ca, count)


def _issue_forked(enclaves: Sequence[Enclave], policy: WorkcellPolicy, now: _dt.datetime, ca: CaKeys,
                  count: int) -> Generator[EnclaveMaterial, None, None]:
    """Fork ``count`` workers, worker ``k`` issuing enclaves ``k, k + count, ...``; read them in order."""
    workers: list[tuple[int, BinaryIO]] = []
    finished = False
    parent = os.getpid()
    try:
        for index in range(count):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: never returns into the caller's stack
                _run_worker(parent, (read_fd, write_fd), [stream for _, stream in workers],
                            enclaves[index::count], policy, now, ca)
            os.close(write_fd)
            workers.append((pid, os.fdopen(read_fd, "rb")))
        for position, enclave in enumerate(enclaves):
            yield _receive(workers[position % count][1], enclave)
        finished = True
    finally:
        for pid, stream in workers:
            stream.close()
            if not finished:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _receive(stream: BinaryIO, enclave: Enclave) -> EnclaveMaterial:
    try:
        kind, value = pickle.load(stream)
    except (EOFError, pickle.UnpicklingError) as exc:
        raise KeystoreError(enclave.path, f"enclave {enclave.path}: the worker process issuing it ended "
                                          "without a result") from exc
    if kind == "error":
        raise value
    return value  # type: ignore[no-any-return]


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this worker when its parent dies (Linux); exit if it already has."""
    with contextlib.suppress(OSError, AttributeError):  # dlopen(NULL): libc is already mapped, no lookup
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` itself when it survives pickling, else a RuntimeError naming it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001  (any pickling failure means: send a description instead)
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _run_worker(parent: int, pipe: tuple[int, int], inherited: list[BinaryIO], enclaves: Sequence[Enclave],
                policy: WorkcellPolicy, now: _dt.datetime, ca: CaKeys) -> NoReturn:
    """Issue ``enclaves`` into the pipe one pickled result at a time, then ``_exit`` (no cleanup runs)."""
    code = 0
    read_fd, write_fd = pipe
    try:
        _die_with_parent(parent)
        os.close(read_fd)
        for stream in inherited:  # other workers' pipes: their end of file must not wait for us
            stream.close()
        with os.fdopen(write_fd, "wb") as out:
            for enclave in enclaves:
                try:
                    message: tuple[str, object] = ("material", issue_material(enclave, policy, now, ca))
                except Exception as exc:  # noqa: BLE001  (raised again in the parent, in order)
                    message = ("error", _portable(exc))
                pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
                out.flush()
                if message[0] == "error":
                    break
    except BaseException:  # noqa: BLE001  (a worker never unwinds into the parent's code)
        code = 1
    finally:
        os._exit(code)
