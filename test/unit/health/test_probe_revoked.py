"""A revoked enclave that the policy still names is an identity ERROR (cert_chain), others stay OK."""

from __future__ import annotations

import datetime as dt

from cobot_security import checks
from cobot_security.health.certificate_probes import probe_certificates
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import revoke_enclave
from cobot_security.keystore.store import Keystore
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Level


def _chain(findings: list, subject: str):
    return next(f for f in findings if f.check == checks.CERT_CHAIN and f.subject == subject)


def test_revoked_enclave_is_reported_and_the_others_are_not(
    layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime
) -> None:
    before = probe_certificates(layout, policy, issued + dt.timedelta(hours=1))
    assert _chain(before, "/gripper").level is Level.OK

    revoke_enclave(Keystore.open(layout.root), "/gripper", "key_compromise", issued + dt.timedelta(hours=2), policy)
    after = probe_certificates(layout, policy, issued + dt.timedelta(hours=3))

    revoked = _chain(after, "/gripper")
    assert revoked.level is Level.ERROR
    assert "revoked" in revoked.message
    assert _chain(after, "/cell/arm_driver").level is Level.OK


def test_reissued_enclave_is_no_longer_reported(
    layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime
) -> None:
    keystore = Keystore.open(layout.root)
    revoke_enclave(keystore, "/gripper", "key_compromise", issued + dt.timedelta(hours=1), policy)
    enclave = policy.enclave("/gripper")
    assert enclave is not None
    keystore.create_enclave(enclave, policy, issued + dt.timedelta(hours=2), force=True)

    findings = probe_certificates(layout, policy, issued + dt.timedelta(hours=3))

    assert _chain(findings, "/gripper").level is Level.OK
