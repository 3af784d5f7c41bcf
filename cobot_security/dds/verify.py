"""Prove a keystore on real middlewares: granted flows deliver, everything else is refused.

One plan (:mod:`cobot_security.dds.plan`) runs on each middleware: one real participant or session
per enclave, loading the keystore's files as the middleware's rmw does (Cyclone DDS and Fast DDS
with their DDS Security plugins, Zenoh with the rendered mutual-TLS and access-control
configuration), plus intruders (a foreign-CA identity, a participant without security) and
revoked identities.  A check passes only on observed behaviour: a delivered sample, or a refusal
(DDS: creation refused by security; Zenoh: nothing crossed the router).  One report format for all.
"""

from __future__ import annotations

import datetime as _dt
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cobot_security.dds.plan import (
    FOREIGN_CA,
    INTRUDER_ENCLAVE,
    UNSECURED,
    Flow,
    VerifyPlan,
    make_foreign_keystore,
    plan_verification,
)
from cobot_security.dds.runner import AgentResult, run_agents
from cobot_security.dds.zenoh_runner import run_zenoh_plan
from cobot_security.errors import KeystoreError
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import crl_status, revoke_enclave
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import (
    CYCLONEDDS,
    ZENOH,
    Enclave,
    GovernanceOptions,
    Lifetimes,
    NodeGrants,
    WorkcellPolicy,
)

__all__ = [
    "FOREIGN_CA", "INTRUDER_ENCLAVE", "NOT_ALLOWED_BY_SECURITY", "UNSECURED", "Check", "Flow", "VerifyPlan",
    "VerifyReport", "judge", "make_foreign_keystore", "plan_verification", "run_self_test", "self_test_policy",
    "summarize", "verify_keystore",
]

#: Every agent reports a refusal by security with this code (Cyclone's DDS_RETCODE_NOT_ALLOWED_BY_SECURITY).
NOT_ALLOWED_BY_SECURITY = -13


@dataclass(frozen=True)
class Check:
    """One verdict row: what was expected of ``subject`` on ``topic`` and what was observed."""

    category: str
    subject: str
    topic: str
    expected: str
    observed: str
    passed: bool


@dataclass(frozen=True)
class VerifyReport:
    """All checks of one verification run, with its duration."""

    domain_id: int
    checks: tuple[Check, ...]
    duration_s: float
    middleware: str = CYCLONEDDS

    @property
    def passed(self) -> bool:
        """True when every check passed (no false allow, no false deny)."""
        return all(check.passed for check in self.checks)

    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [check for check in self.checks if not check.passed]


@dataclass
class SubjectSummary:
    """One row of the short table: a participant and how its checks went (passed/total each)."""

    subject: str
    joined: str = "-"
    flows: list[int] = field(default_factory=lambda: [0, 0])
    writers_refused: list[int] = field(default_factory=lambda: [0, 0])
    readers_refused: list[int] = field(default_factory=lambda: [0, 0])
    passed: bool = True


def summarize(report: VerifyReport) -> list[SubjectSummary]:
    """Fold the checks into one row per enclave (flows counted at the receiving enclave) and intruder."""
    rows: dict[str, SubjectSummary] = {}
    for check in report.checks:
        subject = check.subject.split(" -> ")[-1] if " -> " in check.subject else check.subject
        row = rows.setdefault(subject, SubjectSummary(subject))
        row.passed = row.passed and check.passed
        tally = {
            "granted flow": row.flows,
            "unexpected": row.flows,
            "denied writer": row.writers_refused,
            "denied reader": row.readers_refused,
        }.get(check.category)
        if tally is not None:
            tally[0] += int(check.passed)
            tally[1] += 1
        elif check.category == "participant":
            row.joined = "yes" if check.passed else "REFUSED"
        elif check.category == "intruder":
            row.joined = "isolated" if check.passed else "LEAKED"
        elif check.category == "revoked":
            row.joined = ("refused" if "refused" in check.observed else "isolated") if check.passed else "ACCEPTED"
    return sorted(rows.values(), key=lambda r: (r.subject.startswith(("intruder", "revoked")), r.subject))


def _refusal(error: str | None, participant: AgentResult) -> tuple[bool, str]:
    if participant.participant_error is not None:
        return False, f"participant refused: {participant.participant_error}"
    if error is None:
        return False, "created (ALLOWED)"
    if f"code {NOT_ALLOWED_BY_SECURITY})" in error:
        return True, "blocked at the router" if error.startswith("blocked") else "refused: NOT_ALLOWED_BY_SECURITY"
    return False, f"failed otherwise: {error}"


def judge(plan: VerifyPlan, results: Mapping[str, AgentResult], duration_s: float) -> VerifyReport:
    """Turn observations into checks; unexpected deliveries become failing 'unexpected' checks."""
    checks: list[Check] = []
    expected_pairs = {(f.reader, f.topic, f.writer) for f in plan.flows}
    for path, result in sorted(results.items()):
        if path in plan.intruders:
            continue
        ok = result.participant_created
        checks.append(
            Check("participant", path, "-", "joins the domain",
                  "joined" if ok else f"refused: {result.participant_error}", ok)
        )
    for flow in plan.flows:
        got = (flow.topic, flow.writer) in results[flow.reader].received
        checks.append(
            Check("granted flow", f"{flow.writer} -> {flow.reader}", flow.topic, "delivered",
                  "delivered" if got else "not delivered", got)
        )
    for category, pairs, table in (
        ("denied writer", plan.refused_writers, "writers"),
        ("denied reader", plan.refused_readers, "readers"),
    ):
        for path, topic in pairs:
            result = results[path]
            passed, observed = _refusal(getattr(result, table).get(topic, "not attempted"), result)
            checks.append(Check(category, path, topic, "refused", observed, passed))
    for intruder in plan.intruders:
        result = results[intruder]
        heard = sorted(result.received)
        leaked_to = sorted(
            (path, topic) for path, r in results.items() for topic, sender in r.received if sender == intruder
        )
        observed = "isolated" if result.participant_created else f"isolated (refused: {result.participant_error})"
        if heard or leaked_to:
            observed = f"heard {len(heard)} topic(s), was heard by {len(leaked_to)} reader(s)"
        revoked = intruder.split(":", 1)[1] in plan.revoked
        topics = len(set(result.writers) | set(result.readers)) if revoked else len(plan.intruder_topics)
        checks.append(
            Check("revoked" if revoked else "intruder", intruder, f"{topics} topics", "hears nothing, heard by none",
                  observed, not heard and not leaked_to)
        )
    for path, result in sorted(results.items()):
        if path in plan.intruders:
            continue
        for topic, sender in sorted(result.received):
            if sender != path and (path, topic, sender) not in expected_pairs and sender not in plan.intruders:
                checks.append(Check("unexpected", f"{sender} -> {path}", topic, "no delivery", "delivered", False))
    return VerifyReport(plan.domain_id, tuple(checks), duration_s, plan.middleware)


def _flow_settled(flow: Flow, results: Mapping[str, AgentResult]) -> bool:
    """Delivered, or can no longer be (an end was refused): either way waiting is over."""
    writer, reader = results[flow.writer], results[flow.reader]
    if (flow.topic, flow.writer) in reader.received:
        return True
    if not writer.ready or not reader.ready:
        return False
    return (
        not writer.participant_created
        or not reader.participant_created
        or writer.writers.get(flow.topic) is not None
        or reader.readers.get(flow.topic) is not None
    )


def _flows_settled(plan: VerifyPlan, results: Mapping[str, AgentResult]) -> bool:
    return all(_flow_settled(f, results) for f in plan.flows)


def _run_plan(plan: VerifyPlan, policy: WorkcellPolicy, keystore_root: Path, timeout_s: float,
              zenoh_dir: Path | None, now: _dt.datetime) -> tuple[VerifyPlan, Mapping[str, AgentResult]]:
    if plan.middleware == ZENOH:
        return run_zenoh_plan(plan, policy, keystore_root, now, zenoh_dir=zenoh_dir, timeout_s=timeout_s)
    return plan, run_agents(list(plan.agents), lambda r: _flows_settled(plan, r), timeout_s=timeout_s)


def verify_keystore(
    policy: WorkcellPolicy,
    keystore_root: Path,
    now: _dt.datetime,
    *,
    domain_id: int | None = None,
    denied_sample: int = 3,
    intruders: bool = True,
    timeout_s: float = 60.0,
    middleware: str = CYCLONEDDS,
    zenoh_dir: Path | None = None,
) -> VerifyReport:
    """Run the whole proof for ``policy`` against the keystore on ``middleware`` and return the verdicts.

    ``zenoh_dir`` is the rendered Zenoh configuration to prove (default ``<keystore>/zenoh``,
    rendered there first when absent).

    :raises DdsUnavailableError: when the middleware cannot be started at all.
    :raises KeystoreError: the CRL has expired (every participant would be refused).
    """
    crl = crl_status(KeystoreLayout(keystore_root), now)
    if crl.expired:
        # Cyclone refuses every participant that loads a CRL past its next update: say so plainly
        # instead of reporting every enclave as refused.
        raise KeystoreError(KeystoreLayout(keystore_root).crl,
                            f"CRL expired at {crl.next_update}: every participant loading it is refused; "
                            "re-issue it with 'cobot-security crl refresh' (keystore_manager does this on time)")
    with tempfile.TemporaryDirectory(prefix="cobot-security-intruder-") as tmp:
        intruder_dir = make_foreign_keystore(Path(tmp) / "foreign", policy, now) if intruders else None
        plan = plan_verification(policy, keystore_root, domain_id=domain_id, denied_sample=denied_sample,
                                 intruder_dir=intruder_dir, middleware=middleware)
        start = time.monotonic()
        ran, results = _run_plan(plan, policy, keystore_root, timeout_s, zenoh_dir, now)
        return judge(ran, results, time.monotonic() - start)


SELF_TEST_REVOKED = "/selftest/revoked"


def self_test_policy(domain_id: int, *, revoked: bool = False) -> WorkcellPolicy:
    """A three-enclave cell (talker, listener, bystander) used to check that enforcement works here.

    ``revoked`` adds a fourth talker that :func:`run_self_test` revokes before proving the keystore.
    """
    nodes: tuple[Enclave, ...] = (
        Enclave("/selftest/talker", (NodeGrants("talker", "/selftest", publish=("chatter",)),)),
        Enclave("/selftest/listener", (NodeGrants("listener", "/selftest", subscribe=("chatter",)),)),
        Enclave("/selftest/bystander", (NodeGrants("bystander", "/selftest"),)),
    )
    if revoked:
        nodes += (Enclave(SELF_TEST_REVOKED, (NodeGrants("revoked", "/selftest", publish=("chatter",)),)),)
    return WorkcellPolicy(1, "self-test", (domain_id,), GovernanceOptions(), Lifetimes(), nodes)


def run_self_test(now: _dt.datetime, domain_id: int = 230, timeout_s: float = 30.0,
                  middleware: str = CYCLONEDDS) -> VerifyReport:
    """Build a throwaway keystore for self_test_policy, revoke one talker, and verify it on ``middleware``.

    Proves that the middleware's security loads and enforces here, CRL included.

    :raises DdsUnavailableError: when the middleware cannot be started at all.
    """
    policy = self_test_policy(domain_id, revoked=True)
    with tempfile.TemporaryDirectory(prefix="cobot-security-selftest-") as tmp:
        root = Path(tmp) / "keystore"
        init_keystore(root, policy, now)
        revoke_enclave(Keystore.open(root), SELF_TEST_REVOKED, "key_compromise", now, policy)
        return verify_keystore(policy, root, now, denied_sample=2, timeout_s=timeout_s, middleware=middleware)
