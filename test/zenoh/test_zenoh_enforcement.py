"""Real Zenoh enforcement of the rendered configuration: a router and one session per enclave, on loopback.

The router is started from ``router.json5`` as ``render zenoh`` wrote it (only its listen endpoint
moves to a free port), the sessions from their ``sessions/<enclave>.json5``.  Mutual TLS against the
keystore's identity CA and the router's access control do the refusing; nothing is mocked, and
nothing skips (the set-up installs the zenoh wheel).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import zenoh

from cobot_security.dds.verify import run_self_test, self_test_policy, verify_keystore
from cobot_security.keystore.evidence import read_verify_results
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.middleware.zenoh_render import ZenohLayout, render_zenoh
from cobot_security.policy.export import dump_policy_yaml
from cobot_security.policy.keyexpr import compute_policy_zenoh_grants, proof_key
from cobot_security.policy.model import ZENOH, WorkcellPolicy

LISTENER = "/selftest/listener"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@pytest.fixture
def cell(tmp_path: Path, zenoh_domain: int) -> tuple[WorkcellPolicy, Path]:
    """A talker/listener/bystander keystore with its rendered Zenoh configuration."""
    policy = self_test_policy(zenoh_domain)
    root = tmp_path / "keystore"
    init_keystore(root, policy, _now())
    render_zenoh(Keystore.open(root), policy, root / "zenoh", _now())
    return policy, root


def test_rendered_grants_are_valid_key_expressions_matching_exactly_the_name(
    cell: tuple[WorkcellPolicy, Path], zenoh_domain: int
) -> None:
    policy, _ = cell
    talker = next(g for g in compute_policy_zenoh_grants(policy) if g.enclave == "/selftest/talker")
    grant = zenoh.KeyExpr(f"{zenoh_domain}/selftest/chatter/*/*")
    assert str(grant) in talker.publish
    assert grant.intersects(zenoh.KeyExpr(proof_key(zenoh_domain, "rt/selftest/chatter")))
    # A name below the granted one is another topic: not granted (rmw_zenoh's /** suffix would grant it).
    assert not grant.intersects(zenoh.KeyExpr(proof_key(zenoh_domain, "rt/selftest/chatter/extra")))


def test_verify_on_zenoh_passes_on_the_rendered_configuration(cell: tuple[WorkcellPolicy, Path]) -> None:
    policy, root = cell
    report = verify_keystore(policy, root, _now(), denied_sample=2, timeout_s=30, middleware=ZENOH)
    assert report.passed, report.failures()
    categories = {c.category for c in report.checks}
    assert {"participant", "granted flow", "denied writer", "denied reader", "intruder"} <= categories
    intruders = {c.subject: c.observed for c in report.checks if c.category == "intruder"}
    # Refused at the TLS handshake: a certificate of another CA, and no TLS at all.
    assert all("refused: Unable to connect" in observed for observed in intruders.values()), intruders


def _edit_router(root: Path, edit: object) -> None:
    path = ZenohLayout(root / "zenoh").router_config
    document = json.loads(path.read_text())
    edit(document["access_control"])  # type: ignore[operator]
    path.write_text(json.dumps(document))


def test_a_missing_rule_is_a_false_deny(cell: tuple[WorkcellPolicy, Path]) -> None:
    policy, root = cell
    dropped = f"{LISTENER}:subscribe:egress"

    def drop(acl: dict) -> None:  # type: ignore[type-arg]
        acl["rules"] = [r for r in acl["rules"] if r["id"] != dropped]
        for entry in acl["policies"]:
            entry["rules"] = [r for r in entry["rules"] if r != dropped]
    _edit_router(root, drop)
    report = verify_keystore(policy, root, _now(), denied_sample=1, intruders=False, timeout_s=8, middleware=ZENOH)
    assert not report.passed
    assert any(c.category == "granted flow" and c.subject.endswith(LISTENER) for c in report.failures())


def test_a_permissive_router_is_a_false_allow(cell: tuple[WorkcellPolicy, Path]) -> None:
    policy, root = cell
    _edit_router(root, lambda acl: acl.update(default_permission="allow"))
    report = verify_keystore(policy, root, _now(), denied_sample=2, intruders=False, timeout_s=15, middleware=ZENOH)
    assert not report.passed
    assert {c.category for c in report.failures()} >= {"denied writer", "denied reader"}


def test_revoked_identity_connects_but_is_granted_nothing(zenoh_domain: int) -> None:
    """Zenoh's TLS takes no CRL: the revoked identity still completes the handshake, and the rendered
    access control (which leaves it out) is what isolates it."""
    report = run_self_test(_now(), domain_id=zenoh_domain, middleware=ZENOH)
    assert report.passed, report.failures()
    revoked = [c for c in report.checks if c.category == "revoked"]
    assert len(revoked) == 1 and revoked[0].observed == "isolated"


def test_cli_verify_zenoh_records_its_evidence(cell: tuple[WorkcellPolicy, Path], tmp_path: Path) -> None:
    policy, root = cell
    policy_file = tmp_path / "cell.yaml"
    policy_file.write_text(dump_policy_yaml(policy))
    proc = subprocess.run([sys.executable, "-m", "cobot_security.cli.main", "verify", "--middleware", "zenoh",
                           "--keystore", str(root), "--policy", str(policy_file), "--denied-sample", "1"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify (zenoh):" in proc.stdout and "0 failure(s)" in proc.stdout
    assert set(read_verify_results(KeystoreLayout(root))) == {ZENOH}
