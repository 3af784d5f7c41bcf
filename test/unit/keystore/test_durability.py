"""Durability per batch (issue 11): syncs do not grow with the batch, and each comes before what it protects.

docs/durability.md gives the argument; these tests pin the order it relies on: the journal is
durable before the first change, every staged file is durable before the first switch, the
commit's records are durable before the journal is removed, and a new keystore is durable before
it is switched in.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cobot_security import atomic
from cobot_security.keystore import issuing
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.rotation import plan_rotation, rotate_enclaves
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import WorkcellPolicy

PolicyFactory = Callable[..., WorkcellPolicy]


class Trace:
    """What the code under test did, in order: syncs, fsyncs, switches, journal writes and removal."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, journal: Path) -> None:
        self.events: list[tuple[str, str]] = []
        self.monkeypatch = monkeypatch
        self._wrap(atomic, "sync_filesystem", lambda args: ("syncfs", str(args[0])))
        self._wrap(os, "fsync", lambda args: ("fsync", ""))
        self._wrap(atomic, "exchange_paths", lambda args: ("exchange", Path(str(args[1])).name))
        self._wrap(atomic, "swap_into_place", lambda args: ("swap", Path(str(args[1])).name))
        self._wrap(atomic, "write_bytes_atomic", lambda args: ("write", Path(str(args[0])).name))
        real_unlink = os.unlink

        def unlink(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
            if Path(path) == journal:
                self.events.append(("journal_removed", ""))
            real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "unlink", unlink)

    def _wrap(self, owner: object, name: str, describe: Callable[[tuple[object, ...]], tuple[str, str]]) -> None:
        real = getattr(owner, name)

        def spy(*args: object, **kwargs: object) -> object:
            self.events.append(describe(args))
            return real(*args, **kwargs)

        self.monkeypatch.setattr(owner, name, spy)

    def count(self, kind: str) -> int:
        """How many events of ``kind``."""
        return sum(1 for k, _ in self.events if k == kind)

    def first(self, kind: str, detail: str | None = None) -> int:
        """Index of the first event of ``kind`` (and ``detail``)."""
        return next(i for i, (k, d) in enumerate(self.events) if k == kind and detail in (None, d))

    def last(self, kind: str, detail: str | None = None) -> int:
        """Index of the last event of ``kind`` (and ``detail``)."""
        return max(i for i, (k, d) in enumerate(self.events) if k == kind and detail in (None, d))


def _paths(count: int) -> list[str]:
    return [f"/cell/n{i:03d}" for i in range(count)]


def _rotation_trace(tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime,
                    monkeypatch: pytest.MonkeyPatch, count: int) -> Trace:
    policy = policy_factory(*_paths(count))
    keystore = init_keystore(tmp_path / f"ks{count}", policy, fixed_now)
    later = fixed_now + dt.timedelta(minutes=1)
    items = plan_rotation(keystore, policy, later, all=True)
    with monkeypatch.context() as patch:
        trace = Trace(patch, keystore.layout.journal)
        rotate_enclaves(Keystore.open(keystore.layout.root), policy, items, later)
    return trace


@pytest.mark.single_threaded
@pytest.mark.parametrize("count", [3, 40], ids=["serial", "workers"])
def test_a_rotation_syncs_before_every_switch_and_before_dropping_its_journal(
    tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime, monkeypatch: pytest.MonkeyPatch,
    count: int,
) -> None:
    assert count < issuing.PARALLEL_THRESHOLD or issuing.single_threaded()
    trace = _rotation_trace(tmp_path, policy_factory, fixed_now, monkeypatch, count)
    journal_written = trace.first("write", "transaction.json")
    assert trace.events[journal_written + 1][0] == "fsync"  # the journal is durable before any change
    first_switch, last_switch = trace.first("swap"), trace.last("swap")
    assert trace.count("swap") == count
    assert journal_written < trace.first("syncfs") < first_switch  # staged files durable before the first switch
    removed = trace.first("journal_removed")
    assert last_switch < trace.last("syncfs") < removed  # manifest, audit, integrity durable before
    assert trace.events[removed + 1][0] == "fsync"  # the removal itself is made durable


def test_syncs_per_batch_do_not_grow_with_the_batch(
    tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _rotation_trace(tmp_path, policy_factory, fixed_now, monkeypatch, 3)
    large = _rotation_trace(tmp_path, policy_factory, fixed_now, monkeypatch, 40)
    for kind in ("syncfs", "fsync"):
        assert small.count(kind) == large.count(kind), kind
    assert (large.count("syncfs"), large.count("fsync")) == (2, 8)  # figures in docs/durability.md


def test_a_new_keystore_is_durable_before_it_is_switched_in(
    tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ks"
    trace = Trace(monkeypatch, KeystoreLayout(root).journal)
    init_keystore(root, policy_factory(*_paths(40)), fixed_now)
    assert (trace.count("syncfs"), trace.count("fsync")) == (1, 6)  # for 40 enclaves as for one
    sync, swap = trace.first("syncfs"), trace.first("swap", "ks")
    assert sync < swap and trace.count("swap") == 1
    assert Path(trace.events[sync][1]).name.startswith(".ks.staging-")
