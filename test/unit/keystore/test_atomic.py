"""atomic: exact modes from creation, staged directories, atomic exchange, and the keystore lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cobot_security import atomic
from cobot_security.errors import LockError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_write_bytes_atomic_sets_exact_mode_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        atomic.write_bytes_atomic(tmp_path / "pub", b"a", 0o644)
    finally:
        os.umask(old)
    atomic.write_bytes_atomic(tmp_path / "key", b"secret", 0o600)
    atomic.write_bytes_atomic(tmp_path / "key", b"secret2", 0o600)
    assert (_mode(tmp_path / "pub"), _mode(tmp_path / "key")) == (0o644, 0o600)
    assert (tmp_path / "key").read_bytes() == b"secret2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key", "pub"]


def test_key_file_is_never_wider_than_0600_while_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(atomic.os, "write", spy)
    atomic.write_bytes_atomic(tmp_path / "key", b"secret", 0o600)
    assert seen == [0o600]


def test_private_dir_is_0700(tmp_path: Path) -> None:
    atomic.make_private_dir(tmp_path / "p")
    (tmp_path / "q").mkdir(mode=0o755)
    atomic.make_private_dir(tmp_path / "q")
    assert (_mode(tmp_path / "p"), _mode(tmp_path / "q")) == (0o700, 0o700)


def test_staged_dir_is_hidden_and_removed_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.staged_dir(tmp_path, "target") as staged:
            assert staged.name.startswith(".") and staged.parent == tmp_path
            (staged / "f").write_bytes(b"x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_swap_into_new_place_and_exchange(tmp_path: Path) -> None:
    target = tmp_path / "target"
    with atomic.staged_dir(tmp_path, "target") as staged:
        (staged / "v").write_text("1")
        assert atomic.swap_into_place(staged, target) is None
    with atomic.staged_dir(tmp_path, "target") as staged:
        (staged / "v").write_text("2")
        old = atomic.swap_into_place(staged, target)
    assert old == staged and (old / "v").read_text() == "1"
    assert (target / "v").read_text() == "2"


def test_swap_falls_back_without_renameat2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic, "exchange_paths", lambda a, b: False)
    target = tmp_path / "target"
    target.mkdir()
    (target / "v").write_text("1")
    staged = tmp_path / ".staged"
    staged.mkdir()
    (staged / "v").write_text("2")
    old = atomic.swap_into_place(staged, target)
    assert old is not None and (old / "v").read_text() == "1"
    assert (target / "v").read_text() == "2"


def test_renameat2_exchange_is_available_here(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    assert atomic.exchange_paths(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "a").read_text() == "b"


def test_second_lock_holder_gets_lock_error_after_timeout(tmp_path: Path) -> None:
    lock_path = tmp_path / ".cobot_security" / "lock"
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with atomic.KeystoreLock(lock_path, timeout_s=5):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(LockError, match=r"another cobot-security process holds the keystore lock \(pid \d+\)"):
            with atomic.KeystoreLock(lock_path, timeout_s=0.2):
                pass
    finally:
        release.set()
        holder.join(10)
    with atomic.KeystoreLock(lock_path, timeout_s=1):
        pass
    assert _mode(lock_path.parent) == 0o700 and _mode(lock_path) == 0o600


def test_lock_held_by_another_process_names_its_pid(tmp_path: Path) -> None:
    lock_path = tmp_path / ".cobot_security" / "lock"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from cobot_security.atomic import KeystoreLock\n"
        "with KeystoreLock(Path(sys.argv[1]), timeout_s=5):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(atomic.__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, "-c", script, str(lock_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(LockError, match=rf"holds the keystore lock \(pid {child.pid}\); retry or wait"):
            atomic.KeystoreLock(lock_path, timeout_s=0.2).acquire()
    finally:
        child.communicate("\n", timeout=10)
    assert child.returncode == 0
    with atomic.KeystoreLock(lock_path, timeout_s=1):
        pass
