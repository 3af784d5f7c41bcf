"""Rotation, rollback, CA renewal and a killed rotation, checked with real DDS Security participants.

(Named ``test_rotation_dds.py``: ``test/unit/keystore/test_rotation.py`` already holds the basename
and the test folders are not packages.)
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cobot_security.dds.runner import (
    AgentResult,
    AgentSpec,
    agent_environment,
    run_agents,
)
from cobot_security.dds.verify import self_test_policy
from cobot_security.keystore.audit import read_audit_log, verify_audit_log
from cobot_security.keystore.ca import renew_ca
from cobot_security.keystore.history import list_history
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.rollback import rollback_enclave
from cobot_security.keystore.rotation import RotationItem, rotate_enclaves
from cobot_security.keystore.smime import verify_smime
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import (
    Enclave,
    GovernanceOptions,
    Lifetimes,
    NodeGrants,
    WorkcellPolicy,
)

pytestmark = pytest.mark.dds

CHATTER = "rt/selftest/chatter"
TALKER, LISTENER = "/selftest/talker", "/selftest/listener"


def _now() -> dt.datetime:
    # The DDS plugins judge validity by the real clock.
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _received(results: Mapping[str, AgentResult], reader: str, topic: str, sender: str) -> bool:
    return (topic, sender) in results[reader].received


def _talk(talker_dir: Path, listener_dir: Path, domain: int) -> dict[str, AgentResult]:
    specs = [
        AgentSpec(TALKER, domain, talker_dir, writers=(CHATTER,)),
        AgentSpec(LISTENER, domain, listener_dir, readers=(CHATTER,)),
    ]
    return run_agents(specs, lambda r: _received(r, LISTENER, CHATTER, TALKER), timeout_s=30, grace_s=0.5)


def test_rotated_talker_and_untouched_listener_then_rollback(tmp_path: Path, dds_domain: int) -> None:
    policy = self_test_policy(dds_domain)
    keystore = init_keystore(tmp_path / "ks", policy, _now())
    layout = keystore.layout
    listener_before = (layout.enclave_dir(LISTENER) / "cert.pem").read_bytes()
    (result,) = rotate_enclaves(keystore, policy, [RotationItem(TALKER, "requested", None, None)], _now())
    assert (layout.enclave_dir(LISTENER) / "cert.pem").read_bytes() == listener_before
    results = _talk(layout.enclave_dir(TALKER), layout.enclave_dir(LISTENER), dds_domain)
    assert results[TALKER].participant_created and results[TALKER].writers == {CHATTER: None}
    assert _received(results, LISTENER, CHATTER, TALKER)

    restored = rollback_enclave(keystore, TALKER, _now())
    assert restored.serial == result.old_serial
    results = _talk(layout.enclave_dir(TALKER), layout.enclave_dir(LISTENER), dds_domain)
    assert results[TALKER].participant_created
    assert _received(results, LISTENER, CHATTER, TALKER)


def _pair_policy(domain: int, count: int = 2, prefix: str = "/pair/n") -> WorkcellPolicy:
    """Enclaves that may all publish and subscribe ``/pair/chatter`` (both directions granted)."""
    enclaves = tuple(
        Enclave(f"{prefix}{i:03d}", (NodeGrants(f"n{i:03d}", "/pair", publish=("chatter",), subscribe=("chatter",)),))
        for i in range(count)
    )
    return WorkcellPolicy(1, "pair", (domain,), GovernanceOptions(), Lifetimes(), enclaves)


PAIR_TOPIC = "rt/pair/chatter"


def _both_ways(a_dir: Path, b_dir: Path, domain: int) -> dict[str, AgentResult]:
    specs = [
        AgentSpec("a", domain, a_dir, writers=(PAIR_TOPIC,), readers=(PAIR_TOPIC,)),
        AgentSpec("b", domain, b_dir, writers=(PAIR_TOPIC,), readers=(PAIR_TOPIC,)),
    ]
    return run_agents(specs, lambda r: _received(r, "a", PAIR_TOPIC, "b") and _received(r, "b", PAIR_TOPIC, "a"),
                      timeout_s=30, grace_s=0.5)


def _renewed_cell(tmp_path: Path, domain: int, which: tuple[str, ...]) -> tuple[Keystore, Path, WorkcellPolicy]:
    policy = _pair_policy(domain)
    keystore = init_keystore(tmp_path / "ks", policy, _now() - dt.timedelta(hours=2))
    old = tmp_path / "ks-old"  # a host that has not received the renewed CA yet
    shutil.copytree(keystore.layout.root, old, symlinks=True)
    renew_ca(keystore, policy, _now(), which=which)
    # n001 gets a certificate issued under the renewed CA certificate (and trusts only that one).
    rotate_enclaves(keystore, policy, [RotationItem("/pair/n001", "requested", None, None)], _now())
    return keystore, old, policy


def test_old_ca_and_renewed_identity_ca_participants_talk_both_ways(tmp_path: Path, dds_domain: int) -> None:
    keystore, old, _ = _renewed_cell(tmp_path, dds_domain, ("identity",))
    new_ca = x509.load_pem_x509_certificate(keystore.layout.identity_ca_cert.read_bytes())
    old_ca = x509.load_pem_x509_certificate((old / "public" / "identity_ca.cert.pem").read_bytes())
    assert new_ca.serial_number != old_ca.serial_number and new_ca.public_key() == old_ca.public_key()
    results = _both_ways(KeystoreLayout(old).enclave_dir("/pair/n000"),
                         keystore.layout.enclave_dir("/pair/n001"), dds_domain)
    assert results["a"].participant_created and results["b"].participant_created
    assert _received(results, "a", PAIR_TOPIC, "b"), "old-CA participant did not hear the renewed-CA one"
    assert _received(results, "b", PAIR_TOPIC, "a"), "renewed-CA participant did not hear the old-CA one"


def test_renewed_permissions_ca_needs_a_cell_wide_restart(tmp_path: Path, dds_domain: int) -> None:
    """Documented limitation: old and renewed permissions CA holders refuse each other's grants."""
    keystore, old, _ = _renewed_cell(tmp_path, dds_domain, ("identity", "permissions"))
    mixed = run_agents(
        [AgentSpec("a", dds_domain, KeystoreLayout(old).enclave_dir("/pair/n000"), (PAIR_TOPIC,), (PAIR_TOPIC,)),
         AgentSpec("b", dds_domain, keystore.layout.enclave_dir("/pair/n001"), (PAIR_TOPIC,), (PAIR_TOPIC,))],
        lambda r: False, timeout_s=8, grace_s=0)
    assert mixed["a"].participant_created and mixed["b"].participant_created
    assert mixed["a"].received == set() and mixed["b"].received == set()
    # Once both run from the renewed keystore (the restart), they talk both ways.
    results = _both_ways(keystore.layout.enclave_dir("/pair/n000"), keystore.layout.enclave_dir("/pair/n001"),
                         dds_domain)
    assert _received(results, "a", PAIR_TOPIC, "b") and _received(results, "b", PAIR_TOPIC, "a")


_KILL_SCRIPT = r"""
import datetime as dt, sys, time
from pathlib import Path
sys.path.insert(0, {test_dir!r})
from test_rotation_dds import _pair_policy
from cobot_security import atomic
from cobot_security.keystore.rotation import plan_rotation, rotate_enclaves
from cobot_security.keystore.store import Keystore
# A slow disk: each switch takes 10 ms, so that the kill lands in the middle of switching.
real_swap = atomic.swap_into_place
def slow_swap(staged, target, *, durable=True):
    time.sleep(0.01)
    return real_swap(staged, target, durable=durable)
atomic.swap_into_place = slow_swap
policy = _pair_policy({domain}, {count}, "/bulk/n")
ks = Keystore.open(Path({root!r}))
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
rotate_enclaves(ks, policy, plan_rotation(ks, policy, now, all=True), now)
print("finished", flush=True)
"""


def _consistent(layout: KeystoreLayout, path: str, now: dt.datetime) -> bytes:
    directory = layout.enclave_dir(path)
    cert = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "key.pem").read_bytes(), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers(), path
    signed = verify_smime((directory / "permissions.p7s").read_bytes(), layout.permissions_ca_cert, at=now)
    assert f"<subject_name>{cert.subject.rfc4514_string()}</subject_name>".encode() in signed, path
    assert (os.stat(directory / "key.pem").st_mode & 0o777) == 0o600
    return (directory / "cert.pem").read_bytes()


def test_killed_rotation_recovers_and_enclaves_still_work(tmp_path: Path, dds_domain: int) -> None:
    count = 200
    policy = _pair_policy(dds_domain, count, "/bulk/n")
    paths = [e.path for e in policy.enclaves]
    keystore = init_keystore(tmp_path / "ks", policy, _now())
    layout = keystore.layout
    before = {p: (layout.enclave_dir(p) / "cert.pem").read_bytes() for p in paths}
    script = _KILL_SCRIPT.format(test_dir=str(Path(__file__).parent), domain=dds_domain, count=count,
                                 root=str(layout.root))
    proc = subprocess.Popen([sys.executable, "-c", script], env=agent_environment(loopback=False),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            done = sum(1 for _ in layout.history_dir.glob("~bulk~n*")) if layout.history_dir.is_dir() else 0
            if done >= 20 or proc.poll() is not None:
                break
            time.sleep(0.005)
        assert proc.poll() is None, f"rotation ended before the kill: {proc.communicate()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    assert layout.journal.exists()  # the interrupted transaction is known
    now = _now()
    with Keystore.open(layout.root).transaction(now, "check"):
        pass  # entering repairs: leftovers removed, manifest re-read, interruption audited
    assert not layout.journal.exists()
    events = read_audit_log(layout)
    assert [r.event for r in events[-2:]] == ["recover", "integrity_reread"]
    assert verify_audit_log(layout).ok and check_integrity(layout, at=now).ok
    rotated, untouched = [], []
    for path in paths:
        cert = _consistent(layout, path, now)
        (rotated if cert != before[path] else untouched).append(path)
    assert rotated and untouched, (len(rotated), len(untouched))
    # The integrity manifest took the switched-in enclaves from the disk, and only those.
    assert events[-1].details["count"] == str(len(rotated))
    assert not [p for p in layout.enclaves_dir.rglob(".*staging*")]
    assert not [p for p in layout.history_dir.rglob(".*staging*")]
    for path in rotated:
        assert list_history(layout, path)[0].serial  # each rotated enclave's old version is archived

    results = _both_ways(layout.enclave_dir(rotated[0]), layout.enclave_dir(untouched[-1]), dds_domain)
    assert _received(results, "a", PAIR_TOPIC, "b") and _received(results, "b", PAIR_TOPIC, "a")
    # The interrupted run can simply be run again: it finishes the rest.
    Keystore.open(layout.root)
