"""The renewal exchange as the nodes drive it, without ROS: bytes from the member, bytes from the authority."""

from __future__ import annotations

import datetime as dt

from host_cell import Cell

from cobot_security.keystore.host_checks import RateLimit
from cobot_security.keystore.host_renewal import AuthoritySession, MemberSession, authority_finding, member_findings
from cobot_security.keystore.manifest import read_manifest
from cobot_security.status import Level

DAY = dt.timedelta(days=1)


def _sessions(cell: Cell, host: str, count: int = 10) -> tuple[MemberSession, AuthoritySession]:
    member = MemberSession(cell.root / host, host, dt.timedelta(seconds=10), max_batch=1)
    authority = AuthoritySession(cell.ca.layout.root, None, RateLimit(count, dt.timedelta(minutes=1)))
    return member, authority


def test_member_renews_in_batches_then_asks_for_the_crl(cell_with_hosts: Cell, fixed_now: dt.datetime) -> None:
    cell, later = cell_with_hosts, fixed_now + 70 * DAY
    member, authority = _sessions(cell, "cell_pc")
    kinds, changed = [], []
    for step in range(3):
        now = later + dt.timedelta(seconds=step)
        request = member.next_request(cell.policy, now)
        assert request is not None and member.next_request(cell.policy, now) is None  # one outstanding
        answer = authority.on_request(request, cell.policy, now)
        assert answer is not None
        installed = member.on_answer(answer.document, now)
        assert installed is not None
        kinds.append(installed.kind)
        changed += installed.result.changed

    assert kinds == ["renewal", "renewal", "crl"]  # max_batch 1: one enclave per request
    assert sorted(changed) == ["/cell/arm", "/shared"]
    assert {r.key_origin for r in read_manifest(cell.layout("cell_pc")).enclaves.values()} == {"host"}
    findings = member_findings(member, cell.policy)
    assert [f.level for f in findings] == [Level.OK, Level.OK, Level.OK]
    assert authority_finding(authority).values[1:3] == (("answered", "3"), ("issued", "2"))


def test_answers_to_other_requests_and_timeouts(cell_with_hosts: Cell, fixed_now: dt.datetime) -> None:
    cell, later = cell_with_hosts, fixed_now + 70 * DAY
    member, authority = _sessions(cell, "vision_pc")
    first = member.next_request(cell.policy, later)
    assert first is not None
    stale = authority.on_request(first, cell.policy, later)
    assert stale is not None
    assert member.next_request(cell.policy, later + dt.timedelta(seconds=11)) is not None  # gave the first up
    assert "no answer from the authority" in member.last_problem

    assert member.on_answer(stale.document, later + dt.timedelta(seconds=12)) is None  # answers the old request
    assert member.dropped["answer to another request"] == 1
    assert member.on_answer(b"garbage", later) is None and member.dropped["refused answer"] == 1
    assert member_findings(member, cell.policy)[-1].level == Level.ERROR


def test_authority_drops_floods_malformed_and_replayed_requests(cell_with_hosts: Cell, fixed_now: dt.datetime) -> None:
    cell, later = cell_with_hosts, fixed_now + 70 * DAY
    member, authority = _sessions(cell, "cell_pc", count=2)
    request = member.next_request(cell.policy, later)
    assert request is not None

    answers = [authority.on_request(request, cell.policy, later) for _ in range(3)]
    assert authority.on_request(b"{" * 10, cell.policy, later) is None
    assert authority.on_request(b" " * (5 * 1024 * 1024), cell.policy, later) is None

    assert answers[0] is not None and answers[1] is None and answers[2] is None
    assert dict(authority.dropped) == {"refused": 1, "rate limited": 1, "malformed": 1, "too large": 1}
    assert authority_finding(authority).level == Level.WARN


def test_a_member_without_a_valid_identity_asks_nothing(cell_with_hosts: Cell, fixed_now: dt.datetime) -> None:
    cell = cell_with_hosts
    member, _authority = _sessions(cell, "vision_pc")
    assert member.next_request(cell.policy, fixed_now + 91 * DAY) is None
    findings = {f.subject: f for f in member_findings(member, cell.policy)}
    assert "enroll again by hand" in findings["/cell/camera"].message and findings["/cell/camera"].level == Level.ERROR
