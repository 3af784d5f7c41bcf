"""Hostile and mistaken input between hosts and the authority: each refused with one line, nothing installed."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import replace
from pathlib import Path

import pytest
from host_cell import Cell, make_cell, tree_state

from cobot_security.errors import InputError
from cobot_security.keystore import pki
from cobot_security.keystore.host_authority import answer_request, bundle_host
from cobot_security.keystore.host_checks import RateLimit
from cobot_security.keystore.host_documents import HostRequest, RequestItem, parse_request
from cobot_security.keystore.host_member import make_enrollment_request, make_renewal_request
from cobot_security.keystore.revocation import revoke_enclave
from cobot_security.keystore.signed_json import sign_bytes
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.policy.permissions import subject_name

DAY = dt.timedelta(days=1)


def _enrollment(host: str, now: dt.datetime, items: dict[str, tuple[str, pki.PrivateKey]]) -> bytes:
    """A hand-made enrollment request: enclave → (CSR subject, key)."""
    request = HostRequest("enrollment", host, secrets.token_hex(16), now,
                          tuple(RequestItem(p, csr=pki.make_csr(s, k)) for p, (s, k) in items.items()))
    return request.to_bytes()


def _refused(cell: Cell, data: bytes, now: dt.datetime, *, by_hand: bool = True) -> str:
    before = tree_state(cell.ca.layout.root)
    with pytest.raises(InputError) as caught:
        answer_request(cell.ca, cell.policy, parse_request(data, "req.json"), now, source="req.json", by_hand=by_hand)
    assert tree_state(cell.ca.layout.root) == before  # nothing changed on the CA machine
    message = str(caught.value)
    assert "\n" not in message and message.startswith("req.json")
    return message


def test_a_request_for_an_enclave_of_another_host(tmp_path: Path, host_policy: WorkcellPolicy,
                                                  fixed_now: dt.datetime) -> None:
    cell = make_cell(tmp_path, host_policy, fixed_now)
    key = pki.generate_private_key()
    data = _enrollment("cell_pc", fixed_now, {"/cell/camera": (subject_name("/cell/camera"), key)})
    assert "enclave /cell/camera is not assigned to host cell_pc (it runs on vision_pc)" in _refused(
        cell, data, fixed_now)


def test_a_csr_with_another_subject_or_key_type(tmp_path: Path, host_policy: WorkcellPolicy,
                                                fixed_now: dt.datetime) -> None:
    cell = make_cell(tmp_path, host_policy, fixed_now)
    ec = pki.generate_private_key()
    wrong_subject = _enrollment("cell_pc", fixed_now, {"/cell/arm": (subject_name("/cell/camera"), ec)})
    rsa_key = pki.generate_private_key("rsa-2048")
    rsa = _enrollment("cell_pc", fixed_now, {"/cell/arm": (subject_name("/cell/arm"), rsa_key)})
    assert "CSR subject 'CN=/cell/camera', expected 'CN=/cell/arm'" in _refused(cell, wrong_subject, fixed_now)
    assert "expected EC P-256" in _refused(cell, rsa, fixed_now)


def test_replayed_tampered_stale_and_misdirected_requests(tmp_path: Path, host_policy: WorkcellPolicy,
                                                          fixed_now: dt.datetime) -> None:
    cell = make_cell(tmp_path, host_policy, fixed_now)
    data = make_enrollment_request(cell.host("cell_pc"), host_policy, "cell_pc", fixed_now).to_bytes()
    answer_request(cell.ca, host_policy, parse_request(data, "req.json"), fixed_now, source="req.json", by_hand=True)
    document = json.loads(data)
    csr = document["items"][0]["csr"]
    document["items"][0]["csr"] = csr.replace(csr[100:104], "AAAA" if csr[100:104] != "AAAA" else "BBBB")
    tampered = json.dumps(document).encode()
    stale = data.replace(document["time"].encode(), (fixed_now - 8 * DAY).isoformat().encode())

    assert "nonce: expected a request not seen before, got a replay" in _refused(cell, data, fixed_now)
    assert "enclave /cell/arm: the CSR" in _refused(cell, tampered.replace(document["nonce"].encode(), b"0" * 32),
                                                    fixed_now)
    assert "time: expected a request made after" in _refused(
        cell, stale.replace(document["nonce"].encode(), b"1" * 32), fixed_now)
    assert "host: expected one of the policy's hosts" in _refused(
        cell, data.replace(b'"cell_pc"', b'"edge_pc"').replace(document["nonce"].encode(), b"2" * 32), fixed_now)
    assert "enrollment only by hand" in _refused(cell, data.replace(document["nonce"].encode(), b"3" * 32),
                                                 fixed_now, by_hand=False)


@pytest.mark.parametrize("data", [b"", b"\xff\xfe", b"[]", b'{"format": "cobot_security.host_request"}',
                                  b'{"format": "cobot_security.host_request", "version": 1, "kind": "enrollment", '
                                  b'"host": "../etc", "nonce": "' + b"0" * 32 + b'", "time": "x", "items": []}',
                                  b"{" * 100000])
def test_malformed_requests_are_one_line_input_errors(data: bytes) -> None:
    with pytest.raises(InputError) as caught:
        parse_request(data, "req.json")
    assert "\n" not in str(caught.value)


def test_packages_for_another_host_signed_by_another_ca_tampered_or_older(
        cell_with_hosts: Cell, tmp_path: Path, fixed_now: dt.datetime) -> None:
    cell = cell_with_hosts
    foreign = make_cell(tmp_path / "foreign", cell.policy, fixed_now)
    layout = cell.layout("cell_pc")
    before = tree_state(layout.root)
    vision = bundle_host(cell.ca, cell.policy, "vision_pc", fixed_now + DAY).document
    other_ca = bundle_host(foreign.ca, cell.policy, "cell_pc", fixed_now + DAY).document
    envelope = json.loads(bundle_host(cell.ca, cell.policy, "cell_pc", fixed_now + DAY).document)
    envelope["payload"] = envelope["payload"][:-8] + ("A" * 8 if envelope["payload"][-8:] != "A" * 8 else "B" * 8)
    old = bundle_host(cell.ca, cell.policy, "cell_pc", fixed_now - DAY).document

    problems = []
    for document in (vision, other_ca, json.dumps(envelope).encode(), old):
        with pytest.raises(InputError) as caught:
            cell.install("cell_pc", document, fixed_now + DAY)
        problems.append(str(caught.value))

    assert "host: expected a package for host cell_pc, got one for host vision_pc" in problems[0]
    assert "signed by another CA" in problems[1]
    assert "signature: expected a signature by the pinned CA" in problems[2]
    assert "expected a package made after the installed one" in problems[3]
    assert all("\n" not in p and p.startswith("cell_pc.package") for p in problems)
    assert tree_state(layout.root) == before


def _renewal_refusal(cell: Cell, host: str, path: str, now: dt.datetime) -> str:
    request = make_renewal_request(cell.host(host), host, [path], now)
    answer = answer_request(cell.ca, cell.policy, parse_request(request.to_bytes(), "t"), now, source="t",
                            by_hand=False)
    assert answer.issued == ()
    return answer.refused[path]


def test_renewals_refused_with_their_reason(cell_with_hosts: Cell, fixed_now: dt.datetime) -> None:
    cell = cell_with_hosts
    assert "not inside its renew window" in _renewal_refusal(cell, "cell_pc", "/cell/arm", fixed_now + DAY)
    assert "expired" in _renewal_refusal(cell, "cell_pc", "/cell/arm", fixed_now + 91 * DAY)
    revoke_enclave(cell.ca, "/cell/camera", "key_compromise", fixed_now + DAY, cell.policy)
    assert "is revoked; enroll again by hand" in _renewal_refusal(cell, "vision_pc", "/cell/camera",
                                                                  fixed_now + 70 * DAY)


def test_a_foreign_identity_and_a_reused_key_cannot_renew(cell_with_hosts: Cell, fixed_now: dt.datetime) -> None:
    cell, later = cell_with_hosts, fixed_now + 70 * DAY
    cell_layout = cell.layout("cell_pc")
    shared = cell_layout.enclave_dir("/shared")
    cert_pem, key = (shared / "cert.pem").read_bytes(), pki.load_private_key((shared / "key.pem").read_bytes(),
                                                                            None, shared)
    # vision_pc presents cell_pc's certificate for the enclave both run (as if it had stolen it).
    stolen = HostRequest("renewal", "vision_pc", secrets.token_hex(16), later,
                         (RequestItem("/shared", csr=pki.make_csr(subject_name("/shared"), pki.generate_private_key()),
                                      certificate=cert_pem),))
    stolen = replace(stolen, items=(replace(stolen.items[0], signature=sign_bytes(stolen.signed_bytes(
        stolen.items[0]), key)),))
    same_csr = pki.make_csr(subject_name("/shared"), key)
    same_key = HostRequest("renewal", "cell_pc", secrets.token_hex(16), later,
                           (RequestItem("/shared", csr=same_csr, certificate=cert_pem),))
    same_key = replace(same_key, items=(replace(same_key.items[0], signature=sign_bytes(same_key.signed_bytes(
        same_key.items[0]), key)),))
    forged = replace(same_key, nonce=secrets.token_hex(16), have={"public/crl.pem": "0" * 64})  # signed before

    answers = [answer_request(cell.ca, cell.policy, parse_request(r.to_bytes(), "t"), later, source="t",
                              by_hand=False) for r in (stolen, same_key, forged)]

    assert "was not issued to host vision_pc (foreign identity)" in answers[0].refused["/shared"]
    assert "reuses the current key" in answers[1].refused["/shared"]
    assert "signature is not by the key" in answers[2].refused["/shared"]


def test_rate_limit_counts_per_host_and_window(fixed_now: dt.datetime) -> None:
    limit = RateLimit(2, dt.timedelta(minutes=1))
    allowed = [limit.allow("cell_pc", fixed_now + dt.timedelta(seconds=s)) for s in (0, 1, 2)]
    assert allowed == [True, True, False]
    assert limit.allow("vision_pc", fixed_now + dt.timedelta(seconds=2))
    assert limit.allow("cell_pc", fixed_now + dt.timedelta(seconds=61))
    with pytest.raises(InputError):
        RateLimit(0, dt.timedelta(minutes=1))
