"""Revocation: CRL contents and signature, revoked.json, refresh timing, integrity and audit after revoke."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from cryptography import x509

from cobot_security.errors import InputError, InvalidNameError, KeystoreError
from cobot_security.keystore import pki
from cobot_security.keystore.audit import read_audit_log, verify_audit_log
from cobot_security.keystore.crl import CRL_BACKDATE, RevokedEntry, build_crl
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.revocation import (
    crl_status,
    read_revoked,
    refresh_crl,
    revoke_enclave,
)
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import WorkcellPolicy

WEEK = dt.timedelta(days=7)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def keystore(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> Keystore:
    """A fresh keystore (unencrypted CA keys) for the two-enclave test policy."""
    return init_keystore(tmp_path / "ks", policy, fixed_now)


def _crl(keystore: Keystore) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(keystore.layout.crl.read_bytes())


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _serial(keystore: Keystore, path: str) -> int:
    cert_path = keystore.layout.enclave_dir(path) / "cert.pem"
    return pki.load_certificate(cert_path.read_bytes(), cert_path).serial_number


def test_init_writes_an_empty_crl_linked_from_every_enclave(keystore: Keystore, fixed_now: dt.datetime) -> None:
    crl = _crl(keystore)
    ca = keystore.ca_certificates().identity
    assert len(crl) == 0 and _number(crl) == 1
    assert crl.issuer == ca.subject and crl.is_signature_valid(ca.public_key())
    assert crl.next_update_utc == fixed_now + WEEK
    assert crl.last_update_utc == fixed_now - CRL_BACKDATE  # peers with slow clocks accept it
    assert os.readlink(keystore.layout.enclave_dir("/cell/arm_driver") / "crl.pem") == "../../../public/crl.pem"
    assert os.readlink(keystore.layout.enclave_dir("/gripper") / "crl.pem") == "../../public/crl.pem"
    assert check_integrity(keystore.layout, at=fixed_now).ok


def test_revoke_lists_the_serial_signed_by_the_identity_ca(
    keystore: Keystore, policy: WorkcellPolicy, fixed_now: dt.datetime
) -> None:
    later = fixed_now + dt.timedelta(hours=2)
    serial = _serial(keystore, "/gripper")
    entry = revoke_enclave(keystore, "/gripper", "key_compromise", later, policy, note="lost laptop")
    crl = _crl(keystore)
    ca = keystore.ca_certificates().identity
    revoked = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry == RevokedEntry(format(serial, "x"), "/gripper", "key_compromise", later, "lost laptop")
    assert revoked is not None and revoked.revocation_date_utc == later
    assert revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert crl.get_revoked_certificate_by_serial_number(_serial(keystore, "/cell/arm_driver")) is None
    assert crl.issuer == ca.subject and crl.is_signature_valid(ca.public_key())
    assert crl.last_update_utc == later - CRL_BACKDATE and crl.next_update_utc == later + WEEK
    assert _number(crl) == 2
    assert read_revoked(keystore.layout) == [entry]
    assert (keystore.layout.enclave_dir("/gripper") / "cert.pem").is_file()  # the enclave stays


def test_revoke_keeps_integrity_and_is_audited(keystore: Keystore, policy: WorkcellPolicy,
                                               fixed_now: dt.datetime) -> None:
    revoke_enclave(keystore, "/gripper", "superseded", fixed_now, policy)
    last = read_audit_log(keystore.layout)[-1]
    assert check_integrity(keystore.layout, at=fixed_now).ok
    assert (last.event, last.subject, last.details["reason"]) == ("revoke", "/gripper", "superseded")
    assert last.details["serial"] == format(_serial(keystore, "/gripper"), "x")
    assert verify_audit_log(keystore.layout).ok


def test_revoke_twice_is_refused(keystore: Keystore, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    revoke_enclave(keystore, "/gripper", "unspecified", fixed_now, policy)
    before = keystore.layout.crl.read_bytes()
    with pytest.raises(KeystoreError, match="already revoked") as caught:
        revoke_enclave(keystore, "/gripper", "unspecified", fixed_now, policy)
    assert caught.value.exit_code == 2
    assert keystore.layout.crl.read_bytes() == before


def test_revoke_unknown_enclave_or_reason_is_refused(keystore: Keystore, policy: WorkcellPolicy,
                                                     fixed_now: dt.datetime) -> None:
    with pytest.raises(KeystoreError, match="enclave /nobody: expected an enclave"):
        revoke_enclave(keystore, "/nobody", "unspecified", fixed_now, policy)
    with pytest.raises(InvalidNameError):
        revoke_enclave(keystore, "/../etc", "unspecified", fixed_now, policy)
    with pytest.raises(InputError, match="reason: expected one of"):
        revoke_enclave(keystore, "/gripper", "bored", fixed_now, policy)
    assert read_revoked(keystore.layout) == []


def test_reissued_enclave_can_be_revoked_again(keystore: Keystore, policy: WorkcellPolicy,
                                               fixed_now: dt.datetime) -> None:
    revoke_enclave(keystore, "/gripper", "key_compromise", fixed_now, policy)
    keystore.create_enclave(policy.enclave("/gripper"), policy, fixed_now, force=True)  # type: ignore[arg-type]
    assert os.readlink(keystore.layout.enclave_dir("/gripper") / "crl.pem") == "../../public/crl.pem"
    revoke_enclave(keystore, "/gripper", "superseded", fixed_now, policy)
    assert len(_crl(keystore)) == 2 and len(read_revoked(keystore.layout)) == 2


@pytest.mark.parametrize(("offset", "due"), [(-SECOND, False), (dt.timedelta(0), True), (SECOND, True)])
def test_refresh_boundary(keystore: Keystore, policy: WorkcellPolicy, fixed_now: dt.datetime,
                          offset: dt.timedelta, due: bool) -> None:
    due_point = fixed_now + WEEK - WEEK / 3  # the last third of the CRL's interval
    now = due_point + offset
    assert crl_status(keystore.layout, now).due is due
    refreshed = refresh_crl(keystore, now, policy)
    crl = _crl(keystore)
    assert refreshed is due
    assert _number(crl) == (2 if due else 1)
    assert crl.next_update_utc == (now + WEEK if due else fixed_now + WEEK)
    assert (read_audit_log(keystore.layout)[-1].event == "crl_refresh") is due
    assert check_integrity(keystore.layout, at=now).ok


def test_forced_refresh_keeps_the_entries(keystore: Keystore, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    revoke_enclave(keystore, "/gripper", "key_compromise", fixed_now, policy)
    assert refresh_crl(keystore, fixed_now + SECOND, policy, force=True)
    status = crl_status(keystore.layout, fixed_now + SECOND)
    assert (status.number, status.revoked, status.due, status.expired) == (3, 1, False, False)
    assert read_audit_log(keystore.layout)[-1].details["forced"] == "true"


def test_ordinary_refresh_keeps_the_revoked_entries(keystore: Keystore, policy: WorkcellPolicy,
                                                    fixed_now: dt.datetime) -> None:
    """Revoke, then let the CRL fall due and refresh it unforced, twice, as keystore_manager does:
    a refresh that dropped the entries would silently un-revoke every enclave (issue 16)."""
    revoked_at = fixed_now + dt.timedelta(hours=1)
    serial = _serial(keystore, "/gripper")
    revoke_enclave(keystore, "/gripper", "key_compromise", revoked_at, policy)
    now = revoked_at
    for number in (3, 4):
        now = now + WEEK - WEEK / 3  # the first instant of the last third: due, not forced
        assert crl_status(keystore.layout, now).due
        assert refresh_crl(keystore, now, policy)
        crl = _crl(keystore)
        entry = crl.get_revoked_certificate_by_serial_number(serial)
        assert _number(crl) == number and crl.next_update_utc == now + WEEK
        assert entry is not None and len(crl) == 1
        assert entry.revocation_date_utc == revoked_at
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
        assert crl_status(keystore.layout, now).revoked == 1
        assert crl.get_revoked_certificate_by_serial_number(_serial(keystore, "/cell/arm_driver")) is None
    assert [e.serial for e in read_revoked(keystore.layout)] == [format(serial, "x")]


def test_status_expired_and_absent(keystore: Keystore, fixed_now: dt.datetime) -> None:
    at_next_update = crl_status(keystore.layout, fixed_now + WEEK)
    keystore.layout.crl.unlink()
    absent = crl_status(keystore.layout, fixed_now)
    assert at_next_update.expired and at_next_update.due
    assert not absent.present and absent.due


def test_build_crl_rejects_next_update_not_after_now(keystore: Keystore, fixed_now: dt.datetime) -> None:
    ca = keystore.ca_certificates().identity
    key = pki.load_private_key(keystore.layout.identity_ca_key.read_bytes(), None, keystore.layout.identity_ca_key)
    with pytest.raises(InputError, match="next_update: expected a time after"):
        build_crl(ca, key, (), fixed_now, fixed_now)


def test_revoked_json_is_private_and_readable(keystore: Keystore, policy: WorkcellPolicy,
                                              fixed_now: dt.datetime) -> None:
    revoke_enclave(keystore, "/gripper", "cessation_of_operation", fixed_now, policy)
    document = json.loads(keystore.layout.revoked.read_text())
    assert os.stat(keystore.layout.revoked).st_mode & 0o777 == 0o600
    assert document["revoked"][0]["enclave"] == "/gripper"
    assert document["revoked"][0]["reason"] == "cessation_of_operation"
