"""Real Fast DDS Security enforcement: the compiled Fast DDS agent (Debian's libfastrtps, one process each).

The agent gets exactly the properties rmw_fastrtps_cpp sets (dds/properties.py); the builtin
PKI-DH, Access-Permissions and AES-GCM-GMAC plugins authenticate, check permissions and encrypt.
Nothing is mocked, and nothing skips: the set-up installs libfastrtps-dev and builds the agent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from cobot_security.dds.properties import fastdds_security_properties
from cobot_security.dds.runner import AgentResult, AgentSpec, run_agents
from cobot_security.dds.verify import verify_keystore
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import revoke_enclave
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import FASTDDS, Enclave, NodeGrants, WorkcellPolicy

pytestmark = pytest.mark.dds

CHATTER = "rt/selftest/chatter"
TALKER, LISTENER, BYSTANDER = "/selftest/talker", "/selftest/listener", "/selftest/bystander"


def _now() -> dt.datetime:
    # DDS plugins check validity against the real clock, so these tests use it too.
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _spec(root: Path, path: str, domain: int, **kwargs: tuple[str, ...]) -> AgentSpec:
    return AgentSpec(path, domain, KeystoreLayout(root).enclave_dir(path), middleware=FASTDDS, **kwargs)


def _received(results: Mapping[str, AgentResult], reader: str, sender: str) -> bool:
    return (CHATTER, sender) in results[reader].received


def test_properties_are_the_ones_rmw_fastrtps_sets(cell: tuple[WorkcellPolicy, Path]) -> None:
    _, root = cell
    directory = KeystoreLayout(root).enclave_dir(TALKER)
    props = dict(fastdds_security_properties(directory))
    base = directory.absolute()
    assert props["dds.sec.auth.plugin"] == "builtin.PKI-DH"
    assert props["dds.sec.access.plugin"] == "builtin.Access-Permissions"
    assert props["dds.sec.crypto.plugin"] == "builtin.AES-GCM-GMAC"
    assert props["dds.sec.auth.builtin.PKI-DH.identity_certificate"] == f"file://{base / 'cert.pem'}"
    assert props["dds.sec.access.builtin.Access-Permissions.permissions"] == f"file://{base / 'permissions.p7s'}"
    # The CRL under the PKI-DH plugin's name, as rmw_fastrtps_shared_cpp passes it.
    assert props["dds.sec.auth.builtin.PKI-DH.identity_crl"] == f"file://{base / 'crl.pem'}"


def test_granted_topic_is_delivered_and_ungranted_endpoints_are_refused(
    cell: tuple[WorkcellPolicy, Path], dds_domain: int
) -> None:
    _, root = cell
    specs = [
        _spec(root, TALKER, dds_domain, writers=(CHATTER,)),
        _spec(root, LISTENER, dds_domain, readers=(CHATTER,), writers=(CHATTER,)),
        _spec(root, BYSTANDER, dds_domain, readers=(CHATTER,)),
    ]
    results = run_agents(specs, lambda r: _received(r, LISTENER, TALKER), timeout_s=30, grace_s=0.5)
    assert results[TALKER].writers == {CHATTER: None}
    assert _received(results, LISTENER, TALKER)
    for refused in (results[LISTENER].writers[CHATTER], results[BYSTANDER].readers[CHATTER]):
        assert refused is not None and "(code -13)" in refused and "allow rule" in refused


def test_plain_file_uri_is_refused_by_fast_dds(cell: tuple[WorkcellPolicy, Path], dds_domain: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured: Fast DDS takes only ``file://`` URIs; ``file:`` (what Cyclone takes) fails the participant."""
    _, root = cell
    results = run_agents([_spec(root, TALKER, dds_domain)], lambda r: True, timeout_s=20, grace_s=0)
    assert results[TALKER].participant_created  # control: file:// works
    from cobot_security.dds import runner

    original = runner.fastdds_security_properties
    monkeypatch.setattr(runner, "fastdds_security_properties",
                        lambda d: [(k, v.replace("file://", "file:")) for k, v in original(d)])
    results = run_agents([_spec(root, TALKER, dds_domain)], lambda r: True, timeout_s=20, grace_s=0)
    assert not results[TALKER].participant_created
    assert "URI" in str(results[TALKER].participant_error)


def test_tampered_permissions_are_refused(cell: tuple[WorkcellPolicy, Path], dds_domain: int) -> None:
    _, root = cell
    p7s = KeystoreLayout(root).enclave_dir(BYSTANDER) / "permissions.p7s"
    p7s.write_bytes(p7s.read_bytes().replace(b"<default>DENY</default>", b"<default>ALLOW</default>", 1))
    results = run_agents([_spec(root, BYSTANDER, dds_domain, writers=(CHATTER,))], lambda r: True,
                         timeout_s=20, grace_s=0)
    assert not results[BYSTANDER].participant_created


def test_revoked_identity_cannot_even_create_its_participant(cell: tuple[WorkcellPolicy, Path], tmp_path: Path,
                                                             dds_domain: int) -> None:
    policy, root = cell
    revoke_enclave(Keystore.open(root), TALKER, "key_compromise", _now(), policy)
    stolen = tmp_path / "stolen_talker"
    shutil.copytree(KeystoreLayout(root).enclave_dir(TALKER), stolen, symlinks=False)
    (stolen / "crl.pem").unlink()
    specs = [
        _spec(root, TALKER, dds_domain, writers=(CHATTER,)),
        dataclasses.replace(_spec(root, TALKER, dds_domain, writers=(CHATTER,)), name="stolen", enclave_dir=stolen),
        _spec(root, LISTENER, dds_domain, readers=(CHATTER,)),
    ]
    results = run_agents(specs, lambda r: True, timeout_s=20, grace_s=4)
    # Its own CRL refuses it at once; a copy without the CRL starts, but the listener's CRL shuts it out.
    assert not results[TALKER].participant_created
    assert results["stolen"].participant_created
    assert results[LISTENER].received == set()


def test_identity_signed_by_a_foreign_ca_is_isolated(cell: tuple[WorkcellPolicy, Path], tmp_path: Path,
                                                     dds_domain: int) -> None:
    policy, root = cell
    wildcard = NodeGrants("intruder", "/", publish=("/*",), subscribe=("/*",))
    foreign = tmp_path / "foreign"
    init_keystore(foreign, dataclasses.replace(policy, name="foreign", enclaves=(Enclave("/intruder", (wildcard,)),)),
                  _now())
    specs = [
        _spec(root, TALKER, dds_domain, writers=(CHATTER,)),
        _spec(root, LISTENER, dds_domain, readers=(CHATTER,)),
        AgentSpec("intruder", dds_domain, KeystoreLayout(foreign).enclave_dir("/intruder"), (CHATTER,), (CHATTER,),
                  middleware=FASTDDS),
    ]
    results = run_agents(specs, lambda r: _received(r, LISTENER, TALKER), timeout_s=30, grace_s=3)
    assert _received(results, LISTENER, TALKER)
    assert results["intruder"].participant_created and results["intruder"].received == set()
    assert not _received(results, LISTENER, "intruder")


def test_verify_on_fast_dds_passes_and_catches_a_false_deny(cell: tuple[WorkcellPolicy, Path]) -> None:
    policy, root = cell
    report = verify_keystore(policy, root, _now(), denied_sample=2, timeout_s=30, middleware=FASTDDS)
    assert report.passed, report.failures()
    assert report.middleware == FASTDDS
    listener = KeystoreLayout(root).enclave_dir(LISTENER)
    shutil.copy(KeystoreLayout(root).enclave_dir(BYSTANDER) / "permissions.p7s", listener / "permissions.p7s")
    broken = verify_keystore(policy, root, _now(), denied_sample=1, intruders=False, timeout_s=8, middleware=FASTDDS)
    assert not broken.passed
    assert any(c.subject.endswith(LISTENER) and not c.passed for c in broken.failures())
