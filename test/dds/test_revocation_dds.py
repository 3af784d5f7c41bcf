"""Real DDS Security revocation: after ``revoke``, every peer refuses the revoked enclave's identity.

Each enclave links ``crl.pem`` to ``public/crl.pem``, which rmw_cyclonedds_cpp passes to Cyclone as
``org.eclipse.cyclonedds.sec.auth.crl`` (dds/properties.py must do the same).  One process per
participant, Cyclone DDS with the OMG builtin plugins; nothing is mocked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from cobot_security.dds.properties import security_properties
from cobot_security.dds.runner import AgentResult, AgentSpec, run_agents
from cobot_security.dds.verify import self_test_policy
from cobot_security.keystore import pki
from cobot_security.keystore.crl import build_crl
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import revoke_enclave
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import Enclave, NodeGrants, WorkcellPolicy

pytestmark = pytest.mark.dds

CHATTER = "rt/selftest/chatter"
TALKER, LISTENER, CONTROL = "/selftest/talker", "/selftest/listener", "/selftest/control_talker"
#: The participant property rmw_cyclonedds_cpp sets from the enclave's crl.pem (and Cyclone reads).
CYCLONE_CRL_PROPERTY = "org.eclipse.cyclonedds.sec.auth.crl"


def _now() -> dt.datetime:
    # DDS plugins check validity against the real clock, so these tests use it too.
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def revocation_policy(domain_id: int) -> WorkcellPolicy:
    """self_test_policy, with a talker that also reads chatter and a second (control) talker."""
    base = self_test_policy(domain_id)
    talker = Enclave(TALKER, (NodeGrants("talker", "/selftest", publish=("chatter",), subscribe=("chatter",)),))
    control = Enclave(CONTROL, (NodeGrants("control_talker", "/selftest", publish=("chatter",)),))
    enclaves = tuple(talker if e.path == TALKER else e for e in base.enclaves) + (control,)
    return dataclasses.replace(base, enclaves=enclaves)


@pytest.fixture
def cell(tmp_path: Path, dds_domain: int) -> tuple[WorkcellPolicy, Path]:
    """A keystore for :func:`revocation_policy` on this test's own domain."""
    policy = revocation_policy(dds_domain)
    root = tmp_path / "keystore"
    init_keystore(root, policy, _now())
    return policy, root


def _specs(root: Path, domain: int) -> list[AgentSpec]:
    layout = KeystoreLayout(root)
    return [
        AgentSpec(TALKER, domain, layout.enclave_dir(TALKER), writers=(CHATTER,), readers=(CHATTER,)),
        AgentSpec(LISTENER, domain, layout.enclave_dir(LISTENER), readers=(CHATTER,)),
        AgentSpec(CONTROL, domain, layout.enclave_dir(CONTROL), writers=(CHATTER,)),
    ]


def _received(results: Mapping[str, AgentResult], reader: str, sender: str) -> bool:
    return (CHATTER, sender) in results[reader].received


def test_every_enclave_loads_the_crl(cell: tuple[WorkcellPolicy, Path]) -> None:
    policy, root = cell
    layout = KeystoreLayout(root)
    for enclave in policy.enclaves:
        directory = layout.enclave_dir(enclave.path)
        link = directory / "crl.pem"
        assert link.is_symlink() and link.resolve() == layout.crl.resolve()
        # rmw_cyclonedds_cpp sets the CRL under Cyclone's own name (rmw_node.cpp); Cyclone 0.10
        # ignores "dds.sec.auth.crl".
        assert (CYCLONE_CRL_PROPERTY, f"file:{directory.absolute() / 'crl.pem'}") in security_properties(directory)


def test_talker_delivers_before_revocation(cell: tuple[WorkcellPolicy, Path], dds_domain: int) -> None:
    _, root = cell
    results = run_agents(
        _specs(root, dds_domain),
        lambda r: _received(r, LISTENER, TALKER) and _received(r, TALKER, CONTROL)
        and _received(r, LISTENER, CONTROL),
        timeout_s=30, grace_s=0.5,
    )
    assert _received(results, LISTENER, TALKER)
    assert _received(results, TALKER, CONTROL)
    assert _received(results, LISTENER, CONTROL)


def _stolen_copy(root: Path, tmp_path: Path) -> Path:
    """The revoked talker's enclave as an attacker holding its key would run it: no CRL."""
    stolen = tmp_path / "stolen_talker"
    shutil.copytree(KeystoreLayout(root).enclave_dir(TALKER), stolen, symlinks=False)
    (stolen / "crl.pem").unlink()
    return stolen


@pytest.mark.parametrize("talker_loads_crl", [True, False], ids=["as_deployed", "stolen_copy_without_crl"])
def test_revoked_talker_exchanges_nothing_while_others_still_do(
    cell: tuple[WorkcellPolicy, Path], dds_domain: int, tmp_path: Path, talker_loads_crl: bool
) -> None:
    policy, root = cell
    revoke_enclave(Keystore.open(root), TALKER, "key_compromise", _now(), policy)
    assert (KeystoreLayout(root).enclave_dir(TALKER) / "cert.pem").is_file()  # stays on disk
    specs = _specs(root, dds_domain)
    if not talker_loads_crl:
        specs[0] = dataclasses.replace(specs[0], enclave_dir=_stolen_copy(root, tmp_path))
    # Wait for the control pair to deliver (discovery had its chance), then a grace period.
    results = run_agents(specs, lambda r: _received(r, LISTENER, CONTROL), timeout_s=30, grace_s=3)
    talker = results[TALKER]
    assert _received(results, LISTENER, CONTROL), "control pair of non-revoked enclaves must still talk"
    assert not _received(results, LISTENER, TALKER), "the revoked talker delivered to the listener"
    assert talker.received == set(), "the revoked talker received data"
    if talker_loads_crl:
        # Measured: Cyclone validates the local identity against the CRL too, so it is refused at once.
        assert not talker.participant_created and talker.participant_error is not None
    else:
        # Its own view is consistent (no CRL), so it starts; only its peers' CRL shuts it out.
        assert talker.participant_created and talker.writers[CHATTER] is None


def test_crl_past_its_next_update_refuses_every_participant(
    cell: tuple[WorkcellPolicy, Path], dds_domain: int
) -> None:
    """Measured: with a validly signed, empty CRL whose next_update has passed, Cyclone refuses to
    create any participant that loads it, so a missed ``crl refresh`` stops the whole cell."""
    _, root = cell
    layout = KeystoreLayout(root)
    ca = pki.load_certificate(layout.identity_ca_cert.read_bytes(), layout.identity_ca_cert)
    key = pki.load_private_key(layout.identity_ca_key.read_bytes(), None, layout.identity_ca_key)
    now = _now()
    layout.crl.write_bytes(build_crl(ca, key, (), now - dt.timedelta(days=2), now - dt.timedelta(days=1),
                                     number=2))
    results = run_agents(_specs(root, dds_domain)[1:], lambda r: _received(r, LISTENER, CONTROL),
                         timeout_s=15, grace_s=1)
    for result in results.values():
        assert not result.participant_created and result.participant_error is not None
        assert result.received == set()
