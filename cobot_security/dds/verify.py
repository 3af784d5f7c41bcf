"""Prove a keystore against real DDS Security: granted flows deliver, everything else is refused.

The plan comes from the policy (the same DDS grants the permissions were compiled from); the
evidence comes from one real Cyclone DDS participant per enclave loading the keystore's files as
rmw_cyclonedds_cpp does, plus intruders (a foreign-CA identity, a participant without security).
A check passes only on observed behaviour: a delivered sample, or a creation refused with
DDS_RETCODE_NOT_ALLOWED_BY_SECURITY.
"""

from __future__ import annotations

import datetime as _dt
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cobot_security.dds.runner import AgentResult, AgentSpec, run_agents
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import crl_status
from cobot_security.keystore.store import init_keystore
from cobot_security.names import has_wildcard
from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.model import Enclave, NodeGrants, WorkcellPolicy

#: Cyclone reports this code when access control refuses an entity.
NOT_ALLOWED_BY_SECURITY = -13

FOREIGN_CA = "intruder:foreign_ca"
UNSECURED = "intruder:no_security"


@dataclass(frozen=True)
class Flow:
    """A sample on ``topic`` written by enclave ``writer`` that enclave ``reader`` should get."""

    topic: str
    writer: str
    reader: str


@dataclass(frozen=True)
class VerifyPlan:
    """Everything ``verify`` will try: agents, expected deliveries, expected refusals."""

    domain_id: int
    agents: tuple[AgentSpec, ...]
    flows: tuple[Flow, ...]
    refused_writers: tuple[tuple[str, str], ...]
    refused_readers: tuple[tuple[str, str], ...]
    intruders: tuple[str, ...]
    intruder_topics: tuple[str, ...]


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
    return sorted(rows.values(), key=lambda r: (r.subject.startswith("intruder"), r.subject))


def _concrete(topics: tuple[str, ...]) -> list[str]:
    return [t for t in topics if not has_wildcard(t)]


def _spread(candidates: list[str], count: int) -> list[str]:
    """A deterministic, evenly spread sample (reproducible runs, varied topics)."""
    if count <= 0 or not candidates:
        return []
    if len(candidates) <= count:
        return candidates
    step = len(candidates) / count
    return [candidates[int(i * step)] for i in range(count)]


def plan_verification(
    policy: WorkcellPolicy,
    keystore_root: Path,
    *,
    domain_id: int | None = None,
    denied_sample: int = 3,
    intruder_dir: Path | None = None,
    intruder_topics: int = 4,
) -> VerifyPlan:
    """Build the plan: every granted flow between enclaves, ``denied_sample`` refusals per enclave.

    ``intruder_dir`` holds a keystore signed by a foreign CA (see make_foreign_keystore); without it
    only the unsecured intruder is planned.
    """
    layout = KeystoreLayout(keystore_root)
    domain = policy.domain_ids[0] if domain_id is None else domain_id
    if domain not in policy.domain_ids:
        raise InputError(policy.source, "domain_ids", f"--domain-id to be one of the policy's domains "
                         f"{list(policy.domain_ids)} (permissions grant no other)", str(domain))
    grants = {e.path: compute_dds_grants(e) for e in policy.enclaves}
    pub = {path: set(_concrete(g.publish)) for path, g in grants.items()}
    sub = {path: set(_concrete(g.subscribe)) for path, g in grants.items()}
    universe = sorted(set().union(*pub.values(), *sub.values())) if grants else []

    flows = sorted(
        {
            Flow(topic, writer, reader)
            for writer, topics in pub.items()
            for topic in topics
            for reader, rtopics in sub.items()
            if reader != writer and topic in rtopics
        },
        key=lambda f: (f.topic, f.writer, f.reader),
    )
    agents: list[AgentSpec] = []
    refused_writers: list[tuple[str, str]] = []
    refused_readers: list[tuple[str, str]] = []
    for path in sorted(grants):
        deny_w = _spread([t for t in universe if t not in pub[path]], denied_sample)
        deny_r = _spread([t for t in universe if t not in sub[path]], denied_sample)
        refused_writers += [(path, t) for t in deny_w]
        refused_readers += [(path, t) for t in deny_r]
        agents.append(
            AgentSpec(
                name=path,
                domain_id=domain,
                enclave_dir=layout.enclave_dir(path),
                writers=tuple(sorted(pub[path])) + tuple(deny_w),
                readers=tuple(sorted(sub[path])) + tuple(deny_r),
            )
        )
    targets = _spread(sorted({f.topic for f in flows if f.topic.startswith("rt/")}), intruder_topics)
    intruders = [UNSECURED]
    agents.append(AgentSpec(UNSECURED, domain, None, tuple(targets), tuple(targets)))
    if intruder_dir is not None:
        intruders.append(FOREIGN_CA)
        enclave = KeystoreLayout(intruder_dir).enclave_dir(INTRUDER_ENCLAVE)
        agents.append(AgentSpec(FOREIGN_CA, domain, enclave, tuple(targets), tuple(targets)))
    return VerifyPlan(
        domain_id=domain,
        agents=tuple(agents),
        flows=tuple(flows),
        refused_writers=tuple(refused_writers),
        refused_readers=tuple(refused_readers),
        intruders=tuple(intruders),
        intruder_topics=tuple(targets),
    )


INTRUDER_ENCLAVE = "/intruder"


def make_foreign_keystore(root: Path, policy: WorkcellPolicy, now: _dt.datetime) -> Path:
    """A keystore with its own CAs whose only enclave is granted every topic (``*``) on the domains.

    It stands for a stolen laptop with a self-made identity: it must hear and be heard by nobody.
    """
    wildcard = NodeGrants(name="intruder", namespace="/", publish=("/*",), subscribe=("/*",))
    foreign = WorkcellPolicy(
        version=1,
        name="foreign",
        domain_ids=policy.domain_ids,
        governance=policy.governance,
        lifetimes=policy.lifetimes,
        enclaves=(Enclave(INTRUDER_ENCLAVE, (wildcard,)),),
    )
    init_keystore(root, foreign, now)
    return root


def _refusal(error: str | None, participant: AgentResult) -> tuple[bool, str]:
    if participant.participant_error is not None:
        return False, f"participant refused: {participant.participant_error}"
    if error is None:
        return False, "created (ALLOWED)"
    if f"code {NOT_ALLOWED_BY_SECURITY})" in error:
        return True, "refused: NOT_ALLOWED_BY_SECURITY"
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
        observed = "isolated"
        if heard or leaked_to:
            observed = f"heard {len(heard)} topic(s), was heard by {len(leaked_to)} reader(s)"
        checks.append(
            Check("intruder", intruder, f"{len(plan.intruder_topics)} topics", "hears nothing, heard by none",
                  observed, not heard and not leaked_to)
        )
    for path, result in sorted(results.items()):
        if path in plan.intruders:
            continue
        for topic, sender in sorted(result.received):
            if sender != path and (path, topic, sender) not in expected_pairs and sender not in plan.intruders:
                checks.append(Check("unexpected", f"{sender} -> {path}", topic, "no delivery", "delivered", False))
    return VerifyReport(plan.domain_id, tuple(checks), duration_s)


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


def verify_keystore(
    policy: WorkcellPolicy,
    keystore_root: Path,
    now: _dt.datetime,
    *,
    domain_id: int | None = None,
    denied_sample: int = 3,
    intruders: bool = True,
    timeout_s: float = 60.0,
) -> VerifyReport:
    """Run the whole proof for ``policy`` against the keystore and return the verdicts.

    :raises DdsUnavailableError: when Cyclone DDS cannot be started at all.
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
        plan = plan_verification(
            policy, keystore_root, domain_id=domain_id, denied_sample=denied_sample, intruder_dir=intruder_dir
        )
        start = time.monotonic()
        results = run_agents(list(plan.agents), lambda r: _flows_settled(plan, r), timeout_s=timeout_s)
        return judge(plan, results, time.monotonic() - start)


def self_test_policy(domain_id: int) -> WorkcellPolicy:
    """A three-enclave cell (talker, listener, bystander) used to check that enforcement works here."""
    nodes = (
        Enclave("/selftest/talker", (NodeGrants("talker", "/selftest", publish=("chatter",)),)),
        Enclave("/selftest/listener", (NodeGrants("listener", "/selftest", subscribe=("chatter",)),)),
        Enclave("/selftest/bystander", (NodeGrants("bystander", "/selftest"),)),
    )
    from cobot_security.policy.model import GovernanceOptions, Lifetimes

    return WorkcellPolicy(1, "self-test", (domain_id,), GovernanceOptions(), Lifetimes(), nodes)


def run_self_test(now: _dt.datetime, domain_id: int = 230, timeout_s: float = 30.0) -> VerifyReport:
    """Build a throwaway keystore for self_test_policy and verify it: proves the plugins load and enforce.

    :raises DdsUnavailableError: when Cyclone DDS cannot be started at all.
    """
    policy = self_test_policy(domain_id)
    with tempfile.TemporaryDirectory(prefix="cobot-security-selftest-") as tmp:
        root = Path(tmp) / "keystore"
        init_keystore(root, policy, now)
        return verify_keystore(policy, root, now, denied_sample=2, timeout_s=timeout_s)
