"""issuing: many enclaves issued in forked workers, yielded in order, failures at their place, no orphans."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from cobot_security import atomic
from cobot_security.errors import KeystoreError
from cobot_security.keystore import issuing as issuing_module
from cobot_security.keystore import pki
from cobot_security.keystore.authority import CaKeys, CaPair
from cobot_security.keystore.enclaves import EnclaveMaterial, issue_material
from cobot_security.keystore.issuing import issue_materials
from cobot_security.keystore.smime import verify_smime
from cobot_security.policy.model import Enclave, WorkcellPolicy

REPO = Path(__file__).resolve().parents[3]
PATHS = tuple(f"/cell/n{i:02d}" for i in range(12))


@pytest.fixture
def ca(fixed_now: dt.datetime) -> CaKeys:
    """Two CA pairs kept in memory only (never written)."""
    pairs = []
    for name in ("identity", "permissions"):
        key = pki.generate_private_key()
        pairs.append(CaPair(pki.make_ca(name, key, fixed_now - dt.timedelta(hours=1),
                                        fixed_now + dt.timedelta(days=365)), key))
    return CaKeys(pairs[0], pairs[1])


@pytest.fixture
def cell(policy_factory: Callable[..., WorkcellPolicy]) -> WorkcellPolicy:
    """Twelve enclaves: enough for two workers to interleave."""
    return policy_factory(*PATHS)


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pids of the workers forked by the code under test (recorded in this process only)."""
    real = os.fork
    pids: list[int] = []

    def counting() -> int:
        pid = real()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(issuing_module.os, "fork", counting)
    return pids


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _check(material: EnclaveMaterial, enclave: Enclave, ca: CaKeys, ca_path: Path, at: dt.datetime) -> None:
    cert = x509.load_pem_x509_certificate(material.cert_pem)
    key = pki.load_private_key(material.key_pem, None, Path("key.pem"))
    assert material.path == enclave.path
    assert cert.subject.rfc4514_string() == f"CN={enclave.path}"
    assert pki.key_matches_certificate(key, cert)
    cert.verify_directly_issued_by(ca.identity.cert)
    assert verify_smime(material.permissions_p7s, ca_path, at=at) == material.permissions_xml


@pytest.mark.single_threaded
def test_workers_issue_every_enclave_in_order(tmp_path: Path, cell: WorkcellPolicy, ca: CaKeys,
                                              fixed_now: dt.datetime, forks: list[int]) -> None:
    ca_path = tmp_path / "permissions_ca.pem"
    ca_path.write_bytes(pki.certificate_pem(ca.permissions.cert))
    materials = list(issue_materials(cell.enclaves, cell, fixed_now, ca, workers=2, threshold=2))
    assert len(forks) == 2 and _no_children_left()
    assert [m.path for m in materials] == list(PATHS)
    assert len({m.serial for m in materials}) == len(PATHS) and len({m.key_pem for m in materials}) == len(PATHS)
    for material, enclave in zip(materials, cell.enclaves):
        _check(material, enclave, ca, ca_path, fixed_now)


def test_small_batch_and_threaded_process_issue_here(cell: WorkcellPolicy, ca: CaKeys, fixed_now: dt.datetime,
                                                     forks: list[int]) -> None:
    assert len(list(issue_materials(cell.enclaves, cell, fixed_now, ca, workers=2))) == len(PATHS)  # < threshold
    assert len(list(issue_materials(cell.enclaves, cell, fixed_now, ca, workers=1, threshold=2))) == len(PATHS)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, args=(30,))
    other.start()
    try:  # forking a threaded process (an rclpy node) could deadlock the child: serial instead
        assert len(list(issue_materials(cell.enclaves, cell, fixed_now, ca, workers=2, threshold=2))) == len(PATHS)
    finally:
        stop.set()
        other.join()
    assert forks == []


def _failing_at(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    def failing(enclave: Enclave, policy: WorkcellPolicy, now: dt.datetime, ca: CaKeys) -> EnclaveMaterial:
        if enclave.path == bad:
            raise KeystoreError(enclave.path, "injected failure")
        return issue_material(enclave, policy, now, ca)

    monkeypatch.setattr(issuing_module, "issue_material", failing)


@pytest.mark.single_threaded
@pytest.mark.parametrize("workers", [1, 2], ids=["serial", "forked"])
def test_a_failure_is_raised_at_its_place_after_the_earlier_ones(
    cell: WorkcellPolicy, ca: CaKeys, fixed_now: dt.datetime, monkeypatch: pytest.MonkeyPatch, workers: int,
    forks: list[int],
) -> None:
    _failing_at(monkeypatch, PATHS[5])
    received: list[str] = []
    with pytest.raises(KeystoreError) as info:
        for material in issue_materials(cell.enclaves, cell, fixed_now, ca, workers=workers, threshold=2):
            received.append(material.path)
    assert received == list(PATHS[:5])
    assert (info.value.path, info.value.problem) == (PATHS[5], "injected failure")
    assert len(forks) == (workers if workers > 1 else 0) and _no_children_left()


@pytest.mark.single_threaded
def test_closing_early_reaps_the_workers(cell: WorkcellPolicy, ca: CaKeys, fixed_now: dt.datetime,
                                         forks: list[int]) -> None:
    materials = issue_materials(cell.enclaves, cell, fixed_now, ca, workers=2, threshold=2)
    assert next(materials).path == PATHS[0]
    materials.close()
    assert len(forks) == 2 and _no_children_left()


_HOLDER = textwrap.dedent("""
    import datetime as dt, time
    from pathlib import Path
    from cobot_security import atomic
    from cobot_security.keystore import pki
    from cobot_security.keystore.authority import CaKeys, CaPair
    from cobot_security.keystore.issuing import issue_materials
    from cobot_security.policy.model import Enclave, GovernanceOptions, Lifetimes, WorkcellPolicy

    now = dt.datetime.now(dt.timezone.utc)
    pair = CaPair(pki.make_ca("ca", key := pki.generate_private_key(), now, now + dt.timedelta(days=1)), key)
    enclaves = tuple(Enclave(f"/cell/n{{i:04d}}", ()) for i in range(4000))
    policy = WorkcellPolicy(1, "cell", (0,), GovernanceOptions(), Lifetimes(), enclaves)
    with atomic.KeystoreLock(Path({lock!r})):
        materials = issue_materials(policy.enclaves, policy, now, CaKeys(pair, pair), workers=2, threshold=2)
        next(materials)
        print("issuing", flush=True)
        time.sleep(60)
""")


def test_a_killed_parent_leaves_no_worker_holding_the_keystore_lock(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    script = _HOLDER.format(lock=str(lock))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "issuing\n"
        workers = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        assert len(workers) == 2
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    # The workers inherited the lock's descriptor: they must die with the parent, not finish 4000 enclaves.
    with atomic.KeystoreLock(lock, timeout_s=5.0):
        pass
