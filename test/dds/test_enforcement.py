"""Real DDS Security enforcement: Cyclone DDS participants (one process each) loading our enclaves.

Nothing here is mocked: the OMG builtin plugins authenticate, check permissions and encrypt.  These
tests never skip; CI fails if the plugins cannot be loaded.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from cobot_security.dds.runner import AgentResult, AgentSpec, run_agents
from cobot_security.dds.verify import self_test_policy, verify_keystore
from cobot_security.errors import KeystoreError
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import refresh_crl
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import (
    Enclave,
    GovernanceOptions,
    NodeGrants,
    Protection,
    WorkcellPolicy,
)

pytestmark = pytest.mark.dds

CHATTER = "rt/selftest/chatter"
TALKER, LISTENER, BYSTANDER = "/selftest/talker", "/selftest/listener", "/selftest/bystander"


def _now() -> dt.datetime:
    # DDS plugins check validity against the real clock, so these tests use it too.
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _enclave(root: Path, path: str) -> Path:
    return KeystoreLayout(root).enclave_dir(path)


def _received(results: Mapping[str, AgentResult], reader: str, topic: str, sender: str) -> bool:
    return (topic, sender) in results[reader].received


def test_granted_topic_is_delivered_with_encryption_on(cell: tuple[WorkcellPolicy, Path], dds_domain: int) -> None:
    policy, root = cell
    governance = (KeystoreLayout(root).root / "enclaves" / "governance.xml").read_text()
    assert "<data_protection_kind>ENCRYPT</data_protection_kind>" in governance
    assert "<rtps_protection_kind>ENCRYPT</rtps_protection_kind>" in governance
    specs = [
        AgentSpec(TALKER, dds_domain, _enclave(root, TALKER), writers=(CHATTER,)),
        AgentSpec(LISTENER, dds_domain, _enclave(root, LISTENER), readers=(CHATTER,)),
    ]
    results = run_agents(specs, lambda r: _received(r, LISTENER, CHATTER, TALKER), timeout_s=30)
    assert results[TALKER].participant_created and results[LISTENER].participant_created
    assert results[TALKER].writers == {CHATTER: None}
    assert _received(results, LISTENER, CHATTER, TALKER)


def test_enclave_without_publish_grant_is_refused_a_writer(cell: tuple[WorkcellPolicy, Path], dds_domain: int) -> None:
    _, root = cell
    specs = [
        # The listener may read chatter but not write it; the bystander may do neither.
        AgentSpec(LISTENER, dds_domain, _enclave(root, LISTENER), writers=(CHATTER,), readers=(CHATTER,)),
        AgentSpec(BYSTANDER, dds_domain, _enclave(root, BYSTANDER), writers=(CHATTER,), readers=(CHATTER,)),
    ]
    results = run_agents(specs, lambda r: True, timeout_s=20, grace_s=0.5)
    assert results[LISTENER].readers[CHATTER] is None
    assert "NOT_ALLOWED_BY_SECURITY" in str(results[LISTENER].writers[CHATTER])
    assert "NOT_ALLOWED_BY_SECURITY" in str(results[BYSTANDER].writers[CHATTER])
    assert "NOT_ALLOWED_BY_SECURITY" in str(results[BYSTANDER].readers[CHATTER])


def test_identity_signed_by_a_foreign_ca_receives_nothing(
    cell: tuple[WorkcellPolicy, Path], tmp_path: Path, dds_domain: int
) -> None:
    policy, root = cell
    wildcard = NodeGrants("intruder", "/", publish=("/*",), subscribe=("/*",))
    foreign_policy = WorkcellPolicy(1, "foreign", policy.domain_ids, policy.governance, policy.lifetimes,
                                    (Enclave("/intruder", (wildcard,)),))
    foreign = tmp_path / "foreign"
    init_keystore(foreign, foreign_policy, _now())
    specs = [
        AgentSpec(TALKER, dds_domain, _enclave(root, TALKER), writers=(CHATTER,)),
        AgentSpec(LISTENER, dds_domain, _enclave(root, LISTENER), readers=(CHATTER,)),
        AgentSpec("intruder", dds_domain, _enclave(foreign, "/intruder"), writers=(CHATTER,), readers=(CHATTER,)),
    ]
    # Wait for the legitimate delivery (so discovery had its chance), then a grace period.
    results = run_agents(specs, lambda r: _received(r, LISTENER, CHATTER, TALKER), timeout_s=30, grace_s=3)
    assert _received(results, LISTENER, CHATTER, TALKER)
    intruder = results["intruder"]
    assert intruder.participant_created, "the foreign identity is self-consistent; only the cell must reject it"
    assert intruder.writers[CHATTER] is None and intruder.readers[CHATTER] is None
    assert intruder.received == set()
    assert not _received(results, LISTENER, CHATTER, "intruder")


def test_tampered_permissions_are_refused(cell: tuple[WorkcellPolicy, Path], tmp_path: Path, dds_domain: int) -> None:
    _, root = cell
    enclave = _enclave(root, BYSTANDER)
    p7s = enclave / "permissions.p7s"
    original = p7s.read_bytes()
    # Grant ourselves the talker's topic inside the signed text without re-signing.
    tampered = original.replace(b"<default>DENY</default>", b"<default>ALLOW</default>", 1)
    assert tampered != original
    p7s.write_bytes(tampered)
    results = run_agents([AgentSpec(BYSTANDER, dds_domain, enclave, writers=(CHATTER,))], lambda r: True,
                         timeout_s=20, grace_s=0)
    assert not results[BYSTANDER].participant_created
    assert results[BYSTANDER].participant_error is not None


@pytest.mark.parametrize(
    ("issued_days_ago", "accepted"),
    [
        (89, True),  # one day of the 90-day enclave lifetime left: still accepted (control)
        (91, False),  # expired a day ago, while the CA is still valid: refused
    ],
)
def test_expired_certificate_is_refused(tmp_path: Path, dds_domain: int, issued_days_ago: int,
                                        accepted: bool) -> None:
    policy = self_test_policy(dds_domain)
    root = tmp_path / "keystore"
    init_keystore(root, policy, _now() - dt.timedelta(days=issued_days_ago))
    # A CRL past its next update stops every participant: refresh it as keystore_manager would.
    refresh_crl(Keystore.open(root), _now(), policy, force=True)
    results = run_agents([AgentSpec(TALKER, dds_domain, _enclave(root, TALKER), writers=(CHATTER,))],
                         lambda r: True, timeout_s=20, grace_s=0)
    assert results[TALKER].participant_created is accepted
    assert (results[TALKER].participant_error is None) is accepted


def test_verify_passes_on_a_good_keystore_and_catches_a_false_deny(
    cell: tuple[WorkcellPolicy, Path], dds_domain: int
) -> None:
    policy, root = cell
    report = verify_keystore(policy, root, _now(), denied_sample=2, timeout_s=30)
    assert report.passed, report.failures()
    categories = {c.category for c in report.checks}
    assert {"participant", "granted flow", "denied writer", "denied reader", "intruder"} <= categories
    # Break the listener (its permissions now belong to the bystander): its granted flow must fail.
    listener = _enclave(root, LISTENER)
    shutil.copy(_enclave(root, BYSTANDER) / "permissions.p7s", listener / "permissions.p7s")
    broken = verify_keystore(policy, root, _now(), denied_sample=1, intruders=False, timeout_s=8)
    assert not broken.passed
    assert any(c.subject.endswith(LISTENER) and not c.passed for c in broken.failures())


class _LoopbackCapture:
    """Every frame on the loopback interface while it runs (AF_PACKET: needs root, as CI has)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self.frames: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.frames.append(self._sock.recv(65535))
            except OSError:
                continue

    def stop(self) -> bytes:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
        return b"".join(self.frames)


CANARY = "COBOT-PLAINTEXT-CANARY-7d1f"


def _talk_and_capture(root: Path, domain: int) -> tuple[bool, bytes]:
    capture = _LoopbackCapture()
    try:
        specs = [
            AgentSpec(TALKER, domain, _enclave(root, TALKER), writers=(CHATTER,), marker=CANARY),
            AgentSpec(LISTENER, domain, _enclave(root, LISTENER), readers=(CHATTER,)),
        ]
        results = run_agents(specs, lambda r: _received(r, LISTENER, CHATTER, TALKER), timeout_s=30, grace_s=1)
    finally:
        wire = capture.stop()
    return _received(results, LISTENER, CHATTER, TALKER), wire


def test_payload_never_crosses_the_wire_in_clear(cell: tuple[WorkcellPolicy, Path], tmp_path: Path,
                                                 dds_domain: int) -> None:
    """With the default governance the sample's text is absent from every loopback frame.

    Control: the same exchange under a governance with every protection kind NONE shows the text,
    so the capture really sees the traffic.
    """
    _, root = cell
    delivered, wire = _talk_and_capture(root, dds_domain)
    assert delivered
    assert CANARY.encode() not in wire

    clear = self_test_policy(dds_domain)
    none = Protection.NONE
    clear = WorkcellPolicy(clear.version, clear.name, clear.domain_ids,
                           GovernanceOptions(rtps_protection=none, discovery_protection=none,
                                             liveliness_protection=none, metadata_protection=none,
                                             data_protection=none),
                           clear.lifetimes, clear.enclaves)
    clear_root = tmp_path / "clear"
    init_keystore(clear_root, clear, _now())
    delivered, wire = _talk_and_capture(clear_root, dds_domain)
    assert delivered
    assert CANARY.encode() in wire


def test_verify_names_an_expired_crl_instead_of_failing_every_enclave(tmp_path: Path, dds_domain: int) -> None:
    policy = self_test_policy(dds_domain)
    root = tmp_path / "keystore"
    # Issued 30 days ago and never refreshed: the 7-day CRL expired three weeks ago.
    init_keystore(root, policy, _now() - dt.timedelta(days=30))

    with pytest.raises(KeystoreError, match=r"crl\.pem: CRL expired at .*crl refresh"):
        verify_keystore(policy, root, _now(), timeout_s=10)
