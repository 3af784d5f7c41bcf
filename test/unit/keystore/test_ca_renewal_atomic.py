"""CA renewal is one staged switch: a failure or a kill at any step leaves the old or the new keystore,
each verifying, and it is serialised with every other keystore change (issue 16)."""

from __future__ import annotations

import datetime as dt
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from cobot_security import atomic
from cobot_security.errors import KeystoreError
from cobot_security.keystore.audit import read_audit_log, verify_audit_log
from cobot_security.keystore.ca import renew_ca
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.revocation import refresh_crl
from cobot_security.keystore.smime import verify_smime
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import WorkcellPolicy

PolicyFactory = Callable[..., WorkcellPolicy]
PATHS = ("/cell/arm", "/cell/tool", "/gripper", "/vision/camera")
REPO = Path(__file__).resolve().parents[3]


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def _state(keystore: Keystore, now: dt.datetime) -> tuple[int, int]:
    """(identity, permissions) CA serials, after checking every signed document verifies with them."""
    layout = keystore.layout
    documents = [layout.governance_p7s] + [layout.enclave_dir(p) / "permissions.p7s" for p in PATHS]
    for p7s in documents:
        verify_smime(p7s.read_bytes(), layout.permissions_ca_cert, at=now, source=p7s)
    identity = x509.load_pem_x509_certificate(layout.identity_ca_cert.read_bytes())
    for path in PATHS:
        x509.load_pem_x509_certificate((layout.enclave_dir(path) / "cert.pem").read_bytes()) \
            .verify_directly_issued_by(identity)
    return _serial(layout.identity_ca_cert), _serial(layout.permissions_ca_cert)


@pytest.fixture
def cell(tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime) -> tuple[Keystore, WorkcellPolicy]:
    policy = policy_factory(*PATHS, ca_days=365)
    return init_keystore(tmp_path / "ks", policy, fixed_now), policy


class _Injector:
    """Fail the ``fail_at``-th call to any of the file system steps a renewal takes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
        self.calls = 0
        self.fail_at = fail_at
        for module, name in ((atomic, "write_bytes_atomic"), (atomic, "sync_filesystem"),
                             (atomic, "exchange_paths"), (atomic, "fsync_dir"), (os, "link"), (os, "unlink")):
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name)))

    def _wrap(self, real: Callable[..., object]) -> Callable[..., object]:
        def step(*args: object, **kwargs: object) -> object:
            self.calls += 1
            if self.calls == self.fail_at:
                raise OSError(errno.EIO, "injected I/O error")
            return real(*args, **kwargs)
        return step


def test_a_failure_at_every_step_leaves_old_or_new_and_both_verify(
        cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    keystore, policy = cell
    later = fixed_now + dt.timedelta(days=200)
    old = _state(keystore, later)
    outcomes: list[str] = []
    for fail_at in range(1, 400):
        with monkeypatch.context() as patch:
            injector = _Injector(patch, fail_at)
            try:
                renew_ca(keystore, policy, later)
                failed = False
            except KeystoreError:
                failed = True
        now_state = _state(keystore, later)  # verifies every document against the live CAs
        if not failed:
            assert now_state != old and now_state[0] != old[0] and now_state[1] != old[1]
            break
        outcomes.append("old" if now_state == old else "new")
        assert now_state == old or (now_state[0] != old[0] and now_state[1] != old[1]), fail_at
        if now_state != old:
            old = now_state  # the failure came after the switch: the renewal is complete
        # The next change repairs whatever the failed one left and the logs still verify.
        refresh_crl(keystore, later, policy, force=True)
        assert verify_audit_log(keystore.layout).ok and check_integrity(keystore.layout, at=later).ok
        assert not [p for p in keystore.layout.root.parent.iterdir() if ".staging-" in p.name]
    else:
        pytest.fail("the renewal never completed")
    assert injector.calls > 20 and len(outcomes) == fail_at - 1  # every step before success was injected
    assert "old" in outcomes


_RENEW_SLOWLY = r"""
import datetime as dt, sys, time
sys.path.insert(0, {test_dir!r})
from conftest import make_policy
from cobot_security import atomic
from cobot_security.keystore.ca import renew_ca
from cobot_security.keystore.store import Keystore
real = atomic.write_bytes_atomic
def slow(*args, **kwargs):
    time.sleep(0.004)
    return real(*args, **kwargs)
atomic.write_bytes_atomic = slow
policy = make_policy(*{paths!r}, ca_days=365)
renew_ca(Keystore.open({root!r}), policy, dt.datetime.fromisoformat({now!r}))
print("done", flush=True)
"""


def test_a_kill_at_any_moment_leaves_old_or_new_and_the_next_change_audits_it(
        cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    later = fixed_now + dt.timedelta(days=200)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    seen = set()
    for delay in (0.15, 0.25, 0.35, 0.45, 0.6, 0.8):
        before = _state(keystore, later)
        script = _RENEW_SLOWLY.format(test_dir=str(Path(__file__).parent), paths=PATHS,
                                      root=str(keystore.layout.root), now=later.isoformat())
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        after = _state(keystore, later)  # old or new: either way every document verifies
        assert after == before or (after[0] != before[0] and after[1] != before[1])
        seen.add("old" if after == before else "new")
        interrupted = keystore.layout.journal.exists()
        with keystore.transaction(later, "check"):
            pass
        if interrupted:
            assert read_audit_log(keystore.layout)[-1].event == "recover"
        assert verify_audit_log(keystore.layout).ok and check_integrity(keystore.layout, at=later).ok
        assert not [p for p in keystore.layout.root.parent.iterdir() if ".staging-" in p.name]
    assert "old" in seen  # at least one kill landed before the switch


def test_rotation_during_a_permissions_renewal_is_serialised(
        cell: tuple[Keystore, WorkcellPolicy], tmp_path: Path) -> None:
    keystore, _policy = cell
    policy_file = tmp_path / "cell.yaml"
    policy_file.write_text(
        "version: 1\nname: test_cell\ndomain_ids: [0]\ncertificates: {ca: {duration: 365d}}\nenclaves:\n"
        + "".join(f"  {p}:\n    node: {p.rsplit('/', 1)[1]}\n    namespace: /cell\n"
                  "    topics: {publish: [status], subscribe: [cmd]}\n" for p in PATHS))
    cli = [sys.executable, "-m", "cobot_security.cli.main"]
    common = ["--keystore", str(keystore.layout.root), "--policy", str(policy_file)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen(cli + args + common, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for args in (["rotate", "--all"], ["ca", "renew", "--permissions"], ["rotate", "--all"])]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    now = dt.datetime.now(dt.timezone.utc)
    _state(keystore, now)  # every permissions.p7s verifies with the permissions CA now live
    events = [r.event for r in read_audit_log(keystore.layout)]
    assert events.count("ca_renew") == 1 and events.count("rotate") == 2 * len(PATHS)
    assert verify_audit_log(keystore.layout).ok and check_integrity(keystore.layout, at=now).ok


def test_a_renewal_failing_inside_leaves_the_integrity_manifest_as_it_was(
        cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    keystore, policy = cell
    layout = keystore.layout
    tampered = layout.enclave_dir("/gripper") / "permissions.p7s"  # re-signed by the renewal, in its staged tree
    tampered.write_bytes(tampered.read_bytes() + b"\n")

    real = atomic.write_bytes_atomic
    written: list[str] = []

    def fail_after_the_gripper(path: Path, *args: object, **kwargs: object) -> None:
        if written == ["gripper"]:  # the gripper's document is staged: the next write fails, once
            written.append("failed")
            raise OSError(errno.EIO, "injected I/O error")
        real(path, *args, **kwargs)  # type: ignore[arg-type]
        if str(path).endswith("gripper/permissions.p7s"):
            written.append("gripper")

    with monkeypatch.context() as patch:
        patch.setattr(atomic, "write_bytes_atomic", fail_after_the_gripper)  # the staged keystore is dropped
        with pytest.raises(KeystoreError):
            renew_ca(keystore, policy, fixed_now + dt.timedelta(days=200))
    assert written == ["gripper", "failed"]
    # The live tree is the old one, and so is its manifest: it verifies (a renewal failing inside its
    # block used to re-sign it with the renewal's discarded CA key, "signature does not verify" until
    # the next change) and flags the tampering (the staged paths used to be re-read from the live tree).
    result = check_integrity(layout)
    assert result.problem is None and result.modified == ("enclaves/gripper/permissions.p7s",), result
