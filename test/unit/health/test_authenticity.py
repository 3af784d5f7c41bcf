"""Signed health: real enclave keys from a real keystore sign; the verifier accepts only what it should."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import os
from pathlib import Path

import pytest

from cobot_security.errors import KeystoreError
from cobot_security.health.envelope import (
    EnvelopeError,
    StatusRecord,
    canonical_bytes,
    may_be_signed,
    parse_envelope,
    record_to_finding,
    split_signed,
)
from cobot_security.health.signer import HealthSigner, SignerSource, resolve_enclave
from cobot_security.health.verifier import HealthVerifier, TrustSource
from cobot_security.keystore import pki
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import revoke_enclave
from cobot_security.keystore.store import Keystore
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Level

HOST = "cellpc"
ARM = "/cell/arm_driver"
NOW_OFFSET = dt.timedelta(hours=1)


def _statuses(level: int = 2) -> list[StatusRecord]:
    return [StatusRecord(level, f"cobot_security/key_modes{ARM}", "key.pem mode 0644", HOST,
                         (("enclave", ARM), ("reporter", "/cell/arm_driver")))]


def _signer(layout: KeystoreLayout, enclave: str = ARM, node: str = "/cell/arm_driver") -> HealthSigner:
    return SignerSource(layout.root, enclave, node, HOST).current()


def _verifier(layout: KeystoreLayout) -> HealthVerifier:
    trust = TrustSource(layout.root)
    assert trust.refresh()
    assert trust.anchor is not None, trust.error
    verifier = HealthVerifier(max_clock_skew_s=30.0)
    verifier.set_anchor(trust.anchor)
    return verifier


def _message(signer: HealthSigner, now: dt.datetime, statuses: list[StatusRecord] | None = None) -> list[StatusRecord]:
    body = statuses if statuses is not None else _statuses()
    return body + [signer.sign(body, now)]


def _check(verifier: HealthVerifier, message: list[StatusRecord], now: dt.datetime) -> str:
    signed, signature = split_signed(message)
    reason, _detail = verifier.check(parse_envelope(signature), signed, now)
    if not reason:
        verifier.commit(parse_envelope(signature))
    return reason


def test_canonical_bytes_are_unambiguous() -> None:
    one = canonical_bytes("/a", "/n", "h", 1, "t", [StatusRecord(0, "ab", "c", "h", ())])
    two = canonical_bytes("/a", "/n", "h", 1, "t", [StatusRecord(0, "a", "bc", "h", ())])
    assert one != two
    assert one.startswith(b"\x00\x00\x00\x18cobot_security/health/v1")


def test_genuine_message_verifies_once(layout: KeystoreLayout, issued: dt.datetime) -> None:
    now = issued + NOW_OFFSET
    signer, verifier = _signer(layout), _verifier(layout)
    message = _message(signer, now)
    signature = message[-1]
    assert signature.name == f"cobot_security/health_signature{ARM}"
    assert [k for k, _ in signature.values] == ["reporter", "node", "seq", "sent_at", "certificate", "signature"]
    assert _check(verifier, message, now) == ""
    assert _check(verifier, message, now) == "replayed"
    assert _check(verifier, _message(signer, now), now) == ""  # the next seq is accepted


def test_restarted_signer_continues_above_its_earlier_seqs(layout: KeystoreLayout, issued: dt.datetime) -> None:
    now = issued + NOW_OFFSET
    verifier = _verifier(layout)
    first = _signer(layout)
    for _ in range(5):
        assert _check(verifier, _message(first, now), now) == ""
    restarted = _signer(layout)  # a new process: seq starts from the clock again
    assert _check(verifier, _message(restarted, now + dt.timedelta(seconds=1)), now + dt.timedelta(seconds=1)) == ""


@pytest.mark.parametrize("change", ["level", "message", "value", "drop", "reorder", "host"])
def test_any_change_breaks_the_signature(layout: KeystoreLayout, issued: dt.datetime, change: str) -> None:
    now = issued + NOW_OFFSET
    body = _statuses() + [StatusRecord(0, "cobot_security/cert_expiry/cell/arm_driver", "ok", HOST, ())]
    message = _message(_signer(layout), now, body)
    forged = list(message)
    if change == "level":
        forged[0] = dataclasses.replace(forged[0], level=0)
    elif change == "message":
        forged[0] = dataclasses.replace(forged[0], message="key.pem 0600")
    elif change == "value":
        forged[0] = dataclasses.replace(forged[0], values=(("enclave", "/gripper"),) + forged[0].values[1:])
    elif change == "drop":
        del forged[0]
    elif change == "reorder":
        forged[0], forged[1] = forged[1], forged[0]
    else:
        forged[-1] = dataclasses.replace(forged[-1], hardware_id="otherpc")
    assert _check(_verifier(layout), forged, now) == "bad_signature"


def test_another_enclaves_key_cannot_speak_for_the_arm(layout: KeystoreLayout, issued: dt.datetime) -> None:
    now = issued + NOW_OFFSET
    gripper = _signer(layout, "/gripper", "/cell/gripper")
    message = _message(gripper, now)
    values = dict(message[-1].values)
    claimed = StatusRecord(0, f"cobot_security/health_signature{ARM}", "", HOST,
                           tuple((k, ARM if k == "reporter" else v) for k, v in message[-1].values))
    assert values["reporter"] == "/gripper"
    assert _check(_verifier(layout), message[:-1] + [claimed], now) == "bad_certificate"


def test_foreign_ca_expired_and_revoked_certificates_are_refused(
    build_keystore, policy: WorkcellPolicy, layout: KeystoreLayout, issued: dt.datetime
) -> None:
    now = issued + NOW_OFFSET
    foreign = build_keystore(policy)  # same enclave names, another identity CA
    assert _check(_verifier(layout), _message(_signer(foreign), now), now) == "bad_certificate"
    late = issued + dt.timedelta(days=91)
    assert _check(_verifier(layout), _message(_signer(layout), late), late) == "bad_certificate"
    revoke_enclave(Keystore.open(layout.root), ARM, "key_compromise", now, policy)
    assert _check(_verifier(layout), _message(_signer(layout), now), now) == "revoked"


@pytest.mark.parametrize("offset_s", [-31, 31])
def test_sent_at_outside_the_window_is_stale(layout: KeystoreLayout, issued: dt.datetime, offset_s: int) -> None:
    now = issued + NOW_OFFSET
    message = _message(_signer(layout), now + dt.timedelta(seconds=offset_s))
    assert _check(_verifier(layout), message, now) == "stale"


def test_unsigned_misplaced_and_malformed_envelopes(layout: KeystoreLayout, issued: dt.datetime) -> None:
    now = issued + NOW_OFFSET
    message = _message(_signer(layout), now)
    with pytest.raises(EnvelopeError) as unsigned:
        split_signed(message[:-1])
    with pytest.raises(EnvelopeError) as misplaced:
        split_signed([message[-1]] + message[:-1])
    assert (unsigned.value.reason, misplaced.value.reason) == ("unsigned", "bad_signature")
    signature = message[-1]
    for key, bad in (("seq", "01"), ("seq", "1\n"), ("sent_at", "yesterday"), ("signature", "!!"),
                     ("reporter", "/cell/arm_driver\n"), ("certificate", "A" * 5000)):
        values = tuple((k, bad if k == key else v) for k, v in signature.values)
        with pytest.raises(EnvelopeError, match=key) as bad_field:
            parse_envelope(dataclasses.replace(signature, values=values))
        assert bad_field.value.reason == "bad_signature"
    with pytest.raises(EnvelopeError, match="exactly the keys"):
        parse_envelope(dataclasses.replace(signature, values=signature.values + (("extra", "1"),)))


def test_no_trust_anchor_rejects_everything(layout: KeystoreLayout, issued: dt.datetime, tmp_path: Path) -> None:
    now = issued + NOW_OFFSET
    trust = TrustSource(tmp_path / "missing")
    assert trust.refresh() and trust.anchor is None
    verifier = HealthVerifier(30.0)
    verifier.set_anchor(trust.anchor)
    assert _check(verifier, _message(_signer(layout), now), now) == "no_trust_anchor"


def test_trust_source_rereads_a_new_crl(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    trust = TrustSource(layout.root)
    assert trust.refresh() and trust.anchor is not None
    assert not trust.refresh()  # unchanged files are not re-read
    revoke_enclave(Keystore.open(layout.root), "/gripper", "key_compromise", issued + NOW_OFFSET, policy)
    assert trust.refresh() and trust.anchor is not None and len(trust.anchor.revoked) == 1


def test_crl_not_signed_by_the_ca_is_no_anchor(build_keystore, policy: WorkcellPolicy, layout: KeystoreLayout) -> None:
    other = build_keystore(policy)
    (layout.public_dir / "crl.pem").write_bytes((other.public_dir / "crl.pem").read_bytes())
    trust = TrustSource(layout.root)
    trust.refresh()
    assert trust.anchor is None and "CRL signed by the identity CA" in trust.error


def test_signer_refuses_a_planted_key_link(layout: KeystoreLayout, tmp_path: Path) -> None:
    key = layout.enclave_file(ARM, "key.pem")
    outside = tmp_path / "stolen.pem"
    outside.write_bytes(key.read_bytes())
    key.unlink()
    os.symlink(outside, key)
    with pytest.raises(KeystoreError, match="unexpected symlink"):
        SignerSource(layout.root, ARM, "/cell/arm_driver", HOST).current()


def test_signer_reloads_after_rotation_and_keeps_counting(layout: KeystoreLayout, issued: dt.datetime) -> None:
    source = SignerSource(layout.root, ARM, "/cell/arm_driver", HOST)
    first = source.current()
    first_seq = parse_envelope(first.sign(_statuses(), issued + NOW_OFFSET)).seq
    assert source.current() is first
    key = pki.generate_private_key()
    ca_key = pki.load_private_key(layout.identity_ca_key.read_bytes(), None, layout.identity_ca_key)
    ca = pki.load_certificate(layout.identity_ca_cert.read_bytes(), layout.identity_ca_cert)
    cert = pki.issue_certificate(f"CN={ARM}", key.public_key(), ca, ca_key, issued, issued + dt.timedelta(days=90))
    layout.enclave_file(ARM, "cert.pem").write_bytes(pki.certificate_pem(cert))
    layout.enclave_file(ARM, "key.pem").write_bytes(pki.private_key_pem(key, None))
    second = source.current()
    assert second is not first
    assert parse_envelope(second.sign(_statuses(), issued)).seq == first_seq + 1  # even with an earlier clock
    verifier = _verifier(layout)
    assert _check(verifier, _message(second, issued + NOW_OFFSET), issued + NOW_OFFSET) == ""


def test_mismatched_key_and_certificate_is_refused(layout: KeystoreLayout) -> None:
    layout.enclave_file(ARM, "key.pem").write_bytes(layout.enclave_file("/gripper", "key.pem").read_bytes())
    with pytest.raises(KeystoreError, match="does not match"):
        SignerSource(layout.root, ARM, "/cell/arm_driver", HOST).current()


def test_signature_bytes_are_ecdsa_der(layout: KeystoreLayout, issued: dt.datetime) -> None:
    signature = _message(_signer(layout), issued + NOW_OFFSET)[-1]
    raw = base64.b64decode(dict(signature.values)["signature"])
    assert raw[0] == 0x30 and len(raw) <= 72


def test_record_validation_uses_whole_names() -> None:
    good = StatusRecord(0, "cobot_security/crl/keystore", "ok", HOST, (("reporter", "/r"), ("days", "3")))
    finding = record_to_finding(good)
    assert finding is not None and finding.level is Level.OK and finding.values == (("days", "3"),)
    for bad in (dataclasses.replace(good, level=4), dataclasses.replace(good, name="cobot_security/crl\n/x"),
                dataclasses.replace(good, values=(("days\n", "3"),)), dataclasses.replace(good, message="x" * 4097),
                dataclasses.replace(good, message="\udc80")):
        assert record_to_finding(bad) is None


@pytest.mark.parametrize(("override", "rcl", "expected"), [
    ("/over", "/cell/arm_driver", "/over"),
    ("", "/cell/arm_driver", "/cell/arm_driver"),
    ("", "/", "/cell/arm_driver"),
    ("", None, "/cell/arm_driver"),
])
def test_resolve_enclave_follows_rcl_then_the_policy(policy: WorkcellPolicy, override: str, rcl: str | None,
                                                     expected: str) -> None:
    environ = {"ROS_SECURITY_ENCLAVE_OVERRIDE": override} if override else {}
    assert resolve_enclave(environ, rcl, policy, "/cell/arm_driver") == expected
    assert resolve_enclave({}, "/", policy, "/cell/unknown") is None


def test_unsigned_bytes_are_recognised_before_decoding() -> None:
    assert not may_be_signed(b"\x00\x01cobot_security/key_modes/cell/arm_driver")
    assert may_be_signed(b"\x00\x01cobot_security/health_signature/cell/arm_driver\x00")
