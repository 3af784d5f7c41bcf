"""CLI test fixtures: run ``main(argv)`` in-process, fingerprint keystore trees, keep the env hermetic."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cobot_security.cli.main import main


@dataclass(frozen=True)
class CliResult:
    """What one ``main(argv)`` call returned and printed."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.err.splitlines() if line.strip()]


CliRunner = Callable[..., CliResult]
TreeDigest = Callable[[Path], dict[str, tuple[object, ...]]]


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No passphrase or keystore leaks in from the developer's shell."""
    monkeypatch.delenv("COBOT_SECURITY_CA_PASSPHRASE", raising=False)
    monkeypatch.delenv("ROS_SECURITY_KEYSTORE", raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Call ``main(argv)`` and capture its output; fails the test if main raises instead of returning."""

    def run(*argv: str | Path) -> CliResult:
        capsys.readouterr()  # drop anything printed before this call
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        assert isinstance(code, int)
        return CliResult(code, captured.out, captured.err)

    return run


def digest_tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below ``root``: files by mode and SHA-256, symlinks by target, dirs by mode."""
    entries: dict[str, tuple[object, ...]] = {}
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(current) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                entries[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                entries[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                entries[rel] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
    return entries


@pytest.fixture
def tree_digest() -> TreeDigest:
    """:func:`digest_tree`, for before/after comparisons."""
    return digest_tree


@pytest.fixture
def keystore_dir(tmp_path: Path) -> Path:
    """Where a test's keystore goes (not created)."""
    return tmp_path / "ks"


@pytest.fixture
def example_keystore(cli: CliRunner, keystore_dir: Path) -> Path:
    """A keystore created by ``init`` from the example policy (unencrypted CA keys)."""
    result = cli("init", "--keystore", keystore_dir)
    assert result.code == 0, result.err
    return keystore_dir
