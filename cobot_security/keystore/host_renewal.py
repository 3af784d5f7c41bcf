"""Online renewal between hosts as two small state machines, without ROS (the nodes carry the bytes).

:class:`MemberSession` (keystore_manager role ``member``) decides on each check what to ask the
authority: a renewal of the host's enclaves inside their renew window (new keys born here, items
signed by the current keys), else the current CRL; one request is outstanding at a time and is
given up after ``request_timeout``.  An answer is installed only when it answers that request.

:class:`AuthoritySession` (role ``authority``) answers requests: bounded size, strict parsing, a
per-host rate limit, then :func:`~cobot_security.keystore.host_authority.answer_request` (chain,
revocation, host assignment, renew window, replay).  Whatever it cannot answer is counted and
dropped with its reason, never raised.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cobot_security.clock import iso_utc
from cobot_security.errors import CobotSecurityError, InputError
from cobot_security.keystore import pki
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.host_authority import Answer, answer_request
from cobot_security.keystore.host_checks import RateLimit
from cobot_security.keystore.host_documents import MAX_ITEMS, MAX_REQUEST_BYTES, parse_request
from cobot_security.keystore.host_install import InstallResult, install_package
from cobot_security.keystore.host_member import MemberPlan, make_crl_request, make_renewal_request, plan_member
from cobot_security.keystore.reconcile import CERT_ROTATION, KEYSTORE_MANAGER, KEYSTORE_SUBJECT
from cobot_security.keystore.store import Keystore
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding, Level

#: Subject of the authority's own status (its answers and drops).
AUTHORITY_SUBJECT = "/ca"

REQUESTS_TOPIC = "/cobot_security/ca/requests"
RESPONSES_PREFIX = "/cobot_security/ca/responses/"


def responses_topic(host: str) -> str:
    """The topic the authority answers ``host`` on."""
    return RESPONSES_PREFIX + host


@dataclass(frozen=True)
class Outstanding:
    """The request waiting for its answer."""

    nonce: str
    kind: str
    enclaves: tuple[str, ...]
    sent_at: _dt.datetime


@dataclass(frozen=True)
class Installed:
    """An answer installed: what changed and what was refused (the adapter times the round trip)."""

    result: InstallResult
    kind: str


class MemberSession:
    """A member host's side of online renewal (see the module docstring)."""

    def __init__(self, keystore_root: Path, host: str, request_timeout: _dt.timedelta, max_batch: int,
                 lock_timeout_s: float = 2.0) -> None:
        """Renew the enclaves of ``host`` in the host keystore at ``keystore_root``."""
        self.keystore = Keystore.open_host(keystore_root, lock_timeout_s=lock_timeout_s)
        self.host = host
        self.request_timeout = request_timeout
        self.max_batch = max(1, min(max_batch, MAX_ITEMS))
        self.outstanding: Outstanding | None = None
        self.plan: MemberPlan | None = None
        self.last_answer: _dt.datetime | None = None
        self.last_problem = ""
        self.refused: dict[str, str] = {}
        self.dropped = Counter[str]()

    def next_request(self, policy: WorkcellPolicy, now: _dt.datetime) -> bytes | None:
        """The request to publish now, or None (one is outstanding, or there is nothing to ask).

        :raises CobotSecurityError: the keystore cannot be read or the request not made.
        """
        if self.outstanding is not None:
            if now - self.outstanding.sent_at < self.request_timeout:
                return None
            waited = self.request_timeout.total_seconds()
            self.last_problem = (f"no answer from the authority to the {self.outstanding.kind} request of "
                                 f"{iso_utc(self.outstanding.sent_at)} within {waited:g} s")
            self.outstanding = None
        layout = self.keystore.layout
        self.plan = plan = plan_member(layout, policy, self.host, now)
        due = [path for path in plan.due if path not in self.refused][: self.max_batch]
        if due:
            request = make_renewal_request(self.keystore, self.host, due, now)
        elif plan.valid:
            request = make_crl_request(layout, self.host, next(iter(plan.valid)), now)
        else:
            self.last_problem = "no valid identity on this host to authenticate with: enroll again by hand"
            return None
        self.outstanding = Outstanding(request.nonce, request.kind, tuple(due), now)
        return request.to_bytes()

    def on_answer(self, data: bytes, now: _dt.datetime) -> Installed | None:
        """Install ``data`` when it answers the outstanding request; None (counted) otherwise."""
        if self.outstanding is None:
            self.dropped["no request outstanding"] += 1
            return None
        layout = self.keystore.layout
        try:
            pinned = pki.load_certificate(read_keystore_file(layout, layout.permissions_ca_cert),
                                          layout.permissions_ca_cert)
            result = install_package(self.keystore, data, pinned, layout.permissions_ca_cert, now,
                                     source=RESPONSES_PREFIX + self.host, host=self.host,
                                     expect_nonce=self.outstanding.nonce)
        except CobotSecurityError as exc:
            if isinstance(exc, InputError) and exc.field == "nonce":  # an earlier answer the topic kept
                self.dropped["answer to another request"] += 1
                return None
            self.dropped["refused answer"] += 1
            self.last_problem = f"answer not installed: {exc}"
            self.outstanding = None
            return None
        sent = self.outstanding
        self.outstanding = None
        self.last_answer, self.last_problem = now, ""
        self.refused = {**{p: r for p, r in self.refused.items() if p not in result.changed}, **result.refused}
        return Installed(result, sent.kind)


class AuthoritySession:
    """The authority's side of online renewal (see the module docstring)."""

    def __init__(self, keystore_root: Path, passphrase: bytes | None, rate: RateLimit,
                 lock_timeout_s: float = 2.0) -> None:
        """Answer from the CA keystore at ``keystore_root``."""
        self.keystore = Keystore.open(keystore_root, passphrase, lock_timeout_s=lock_timeout_s)
        self.rate = rate
        self.answered = 0
        self.issued = 0
        self.dropped = Counter[str]()
        self.last_problem = ""

    def _drop(self, reason: str, detail: str) -> None:
        self.dropped[reason] += 1
        self.last_problem = detail

    def on_request(self, data: bytes, policy: WorkcellPolicy, now: _dt.datetime) -> Answer | None:
        """The answer to publish for ``data``, or None (counted and dropped, the reason kept)."""
        if len(data) > MAX_REQUEST_BYTES:
            self._drop("too large", f"a request of {len(data)} bytes")
            return None
        try:
            request = parse_request(data, REQUESTS_TOPIC)
        except CobotSecurityError as exc:
            self._drop("malformed", str(exc))
            return None
        if not self.rate.allow(request.host, now):
            self._drop("rate limited", f"host {request.host}: over {self.rate.count} requests per "
                                       f"{self.rate.window.total_seconds():g} s")
            return None
        try:
            answer = answer_request(self.keystore, policy, request, now, source=REQUESTS_TOPIC, by_hand=False)
        except CobotSecurityError as exc:
            self._drop("refused", f"host {request.host}: {exc}")
            return None
        self.answered += 1
        self.issued += len(answer.issued)
        return answer


def _enclave_finding(session: MemberSession, path: str, plan: MemberPlan) -> Finding:
    values: tuple[tuple[str, str], ...] = (("enclave", path), ("host", session.host))
    not_after = plan.valid.get(path)
    if not_after is not None:
        values += (("not_after", iso_utc(not_after)),)
    if path in session.refused:
        return Finding(CERT_ROTATION, path, Level.ERROR, f"renewal refused by the authority: {session.refused[path]}",
                       values + (("state", "refused"),))
    if path in plan.missing:
        return Finding(CERT_ROTATION, path, Level.ERROR, f"enclave of host {session.host} missing from its keystore",
                       values + (("state", "missing"),))
    if path in plan.expired:
        return Finding(CERT_ROTATION, path, Level.ERROR, "certificate expired: enroll again by hand "
                                                         "(host request / host sign / host install)",
                       values + (("state", "expired"),))
    if path in plan.due:
        return Finding(CERT_ROTATION, path, Level.WARN, "inside its renew window: renewal requested from the authority",
                       values + (("state", "due"),))
    return Finding(CERT_ROTATION, path, Level.OK, "valid, renewed by this host through the authority",
                   values + (("state", "ok"),))


def member_findings(session: MemberSession, policy: WorkcellPolicy) -> list[Finding]:
    """cert_rotation per enclave of the host, then the manager's own status (answers, problems)."""
    plan = session.plan
    findings = [_enclave_finding(session, e.path, plan) for e in policy.enclaves_on(session.host)] if plan else []
    values = (("role", "member"), ("host", session.host),
              ("last_answer", iso_utc(session.last_answer) if session.last_answer else ""))
    if session.last_problem:
        findings.append(Finding(KEYSTORE_MANAGER, KEYSTORE_SUBJECT, Level.ERROR, session.last_problem, values))
    else:
        findings.append(Finding(KEYSTORE_MANAGER, KEYSTORE_SUBJECT, Level.OK,
                                f"member host {session.host}: renews through the authority", values))
    return findings


def authority_finding(session: AuthoritySession) -> Finding:
    """The authority's status: answers given, certificates issued, requests dropped and why."""
    values: tuple[tuple[str, str], ...] = (("role", "authority"), ("answered", str(session.answered)),
                                           ("issued", str(session.issued)),
                                           ("dropped", str(sum(session.dropped.values()))))
    values += tuple((f"dropped_{reason.replace(' ', '_')}", str(count))
                    for reason, count in sorted(session.dropped.items()))
    if session.dropped:
        return Finding(KEYSTORE_MANAGER, AUTHORITY_SUBJECT, Level.WARN,
                       f"{sum(session.dropped.values())} request(s) dropped; last: {session.last_problem}", values)
    return Finding(KEYSTORE_MANAGER, AUTHORITY_SUBJECT, Level.OK,
                   f"answered {session.answered} request(s), issued {session.issued} certificate(s)", values)
