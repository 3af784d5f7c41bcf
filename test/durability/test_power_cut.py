"""Power cuts during a rotation, on a real ext4 file system in a loop device (issue 11).

The rotation runs in a child process that pauses after every file-system step of interest; at each
pause the test copies the loop device's backing image — what the disk holds at that instant, which
is what a power cut there would leave — and lets the child go on.  Each copy is then mounted (ext4
replays its journal as after a reboot) and must hold a keystore in which, after the next
transaction's repair, every enclave is fully old or fully new, the integrity manifest and the audit
log verify, and the manifest names what is on disk.  The file system is mounted ``noauto_da_alloc``
so that ext4's rename-over-file heuristic does not hide a missing sync (as on XFS).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from ci_required import missing

from cobot_security.keystore import pki
from cobot_security.keystore.audit import verify_audit_log
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.manifest import read_manifest
from cobot_security.keystore.smime import verify_smime
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import Enclave, GovernanceOptions, Lifetimes, NodeGrants, WorkcellPolicy

PATHS = ("/cell/arm", "/cell/gripper", "/vision")
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)
TIMEOUT_S = 120



@pytest.fixture(autouse=True)
def _loop_devices() -> None:
    """Root and losetup attach the loop device; CI runs as root with util-linux."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        missing("needs root and losetup to attach a loop device")


def _policy() -> WorkcellPolicy:
    enclaves = tuple(Enclave(p, (NodeGrants(p.rsplit("/", 1)[1], "/cell", publish=("status",)),)) for p in PATHS)
    return WorkcellPolicy(1, "power_cut", (0,), GovernanceOptions(), Lifetimes(), enclaves)


def _run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=TIMEOUT_S).stdout.strip()


@contextmanager
def _mounted(image: Path, mountpoint: Path) -> Iterator[Path]:
    device = _run("losetup", "--find", "--show", str(image))
    try:
        mountpoint.mkdir(exist_ok=True)
        _run("mount", "-t", "ext4", "-o", "noauto_da_alloc", device, str(mountpoint))
        try:
            yield mountpoint
        finally:
            _run("umount", str(mountpoint))
    finally:
        _run("losetup", "--detach", device)


# The child: rotate every enclave, pausing after each step; "pause <n> <step>" on stdout, a line on stdin goes on.
_CHILD = textwrap.dedent("""
    import datetime as dt, json, os, sys
    from pathlib import Path
    from cobot_security import atomic
    from cobot_security.keystore import audit, enclaves, history, integrity, transaction
    from cobot_security.keystore.rotation import plan_rotation, rotate_enclaves
    from cobot_security.keystore.store import Keystore
    sys.path[:0] = [{test_dir!r}, {helpers_dir!r}]  # the test module, and test/ for its helpers
    from test_power_cut import NOW, _policy

    steps = [0]
    def pausing(owner, name):
        real = getattr(owner, name)
        def wrapper(*args, **kwargs):
            result = real(*args, **kwargs)
            steps[0] += 1
            print("pause", steps[0], name, flush=True)
            sys.stdin.readline()
            return result
        setattr(owner, name, wrapper)
    for owner, name in [(atomic, "write_bytes_atomic"), (atomic, "write_new_file"), (atomic, "sync_filesystem"),
                        (atomic, "swap_into_place"), (atomic, "fsync_dir"), (history, "archive_tree"),
                        (transaction, "append_audit"), (transaction, "write_integrity_manifest"), (os, "unlink")]:
        pausing(owner, name)
    keystore = Keystore.open(Path({root!r}))
    later = NOW + dt.timedelta(hours=1)
    rotate_enclaves(keystore, _policy(), plan_rotation(keystore, _policy(), later, all=True), later)
    print("done", flush=True)
""")


def _snapshots(image: Path, root: Path, out: Path) -> list[tuple[str, Path]]:
    """Run the rotation, copying the image at every pause; return (step, copy) in order."""
    script = _CHILD.format(test_dir=str(Path(__file__).parent), helpers_dir=str(Path(__file__).parents[1]),
                           root=str(root))
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[2])
    copies: list[tuple[str, Path]] = []
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("done"):
                break
            _, number, step = line.split()
            copy = out / f"cut-{int(number):03d}.img"
            shutil.copyfile(image, copy)  # what the disk holds now: a power cut here leaves this
            copies.append((step, copy))
            proc.stdin.write("\n")
            proc.stdin.flush()
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=TIMEOUT_S) == 0
    return copies


def _state(root: Path) -> dict[str, str]:
    """Serial of each enclave's certificate on disk."""
    return {p: format(pki.load_certificate((root / "enclaves" / p[1:] / "cert.pem").read_bytes(),
                                           Path("cert.pem")).serial_number, "x") for p in PATHS}


def _check_recovers(root: Path, before: dict[str, str], after: dict[str, str], step: str) -> None:
    later = NOW + dt.timedelta(hours=2)
    with Keystore.open(root).transaction(later, "check"):
        pass  # entering repairs an interrupted change
    layout = Keystore.open(root).layout
    state = _state(root)
    for path in PATHS:
        assert state[path] in (before[path], after[path]), (step, path)
        directory = layout.enclave_dir(path)
        cert = pki.load_certificate((directory / "cert.pem").read_bytes(), directory / "cert.pem")
        key = pki.load_private_key((directory / "key.pem").read_bytes(), None, directory / "key.pem")
        assert pki.key_matches_certificate(key, cert), (step, path)
        signed = verify_smime((directory / "permissions.p7s").read_bytes(), layout.permissions_ca_cert, at=later)
        assert signed == (directory / "permissions.xml").read_bytes(), (step, path)
    manifest = read_manifest(layout)
    assert {p: manifest.enclaves[p].serial for p in PATHS} == state, step
    assert check_integrity(layout, at=later).ok, step
    assert verify_audit_log(layout).ok, step
    assert not layout.journal.exists(), step


def test_a_power_cut_at_any_step_of_a_rotation_leaves_each_enclave_old_or_new(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(48 * 1024 * 1024)
    _run("mkfs.ext4", "-q", "-F", str(image))
    with _mounted(image, tmp_path / "mnt") as mnt:
        root = mnt / "ks"
        init_keystore(root, _policy(), NOW)
        os.sync()
        before = _state(root)
        copies = _snapshots(image, root, tmp_path)
        after = _state(root)
    assert len(copies) > 20 and all(before[p] != after[p] for p in PATHS)
    steps = {step for step, _ in copies}
    assert {"sync_filesystem", "swap_into_place", "append_audit", "unlink"} <= steps
    for step, copy in copies:
        with _mounted(copy, tmp_path / "cut") as cut:
            _check_recovers(cut / "ks", before, after, f"{copy.name} after {step}")
        copy.unlink()
