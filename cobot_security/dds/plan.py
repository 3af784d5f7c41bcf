"""What ``verify`` tries, for every middleware alike: granted flows, sampled refusals, intruders, revoked identities.

The plan comes from the policy (the same DDS grants the permissions were compiled from).  It is
written in DDS names (``rt/…``, ``rq/…Request``, ``rr/…Reply``); the Cyclone DDS and Fast DDS
agents use them as they are, the Zenoh runner translates them to rmw_zenoh keys.  Intruders are a
participant without security and, when a foreign keystore is given, an identity of another CA;
revoked identities are the keystore's enclaves whose current certificate is in its CRL.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

from cobot_security.dds.runner import AgentSpec
from cobot_security.errors import InputError
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import revoked_current_enclaves
from cobot_security.keystore.store import init_keystore
from cobot_security.names import has_wildcard
from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.model import CYCLONEDDS, Enclave, NodeGrants, WorkcellPolicy

FOREIGN_CA = "intruder:foreign_ca"
UNSECURED = "intruder:no_security"
REVOKED_PREFIX = "revoked:"
INTRUDER_ENCLAVE = "/intruder"


@dataclass(frozen=True)
class Flow:
    """A sample on ``topic`` written by enclave ``writer`` that enclave ``reader`` should get."""

    topic: str
    writer: str
    reader: str


@dataclass(frozen=True)
class VerifyPlan:
    """Everything ``verify`` will try: agents, expected deliveries, expected refusals, isolated subjects.

    ``intruders`` (and ``revoked``, which are intruders too) must hear nothing and be heard by none.
    """

    domain_id: int
    agents: tuple[AgentSpec, ...]
    flows: tuple[Flow, ...]
    refused_writers: tuple[tuple[str, str], ...]
    refused_readers: tuple[tuple[str, str], ...]
    intruders: tuple[str, ...]
    intruder_topics: tuple[str, ...]
    middleware: str = CYCLONEDDS
    revoked: tuple[str, ...] = ()


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


def _flows(pub: dict[str, set[str]], sub: dict[str, set[str]]) -> list[Flow]:
    return sorted(
        {Flow(topic, writer, reader) for writer, topics in pub.items() for topic in topics
         for reader, rtopics in sub.items() if reader != writer and topic in rtopics},
        key=lambda f: (f.topic, f.writer, f.reader),
    )


def plan_verification(
    policy: WorkcellPolicy,
    keystore_root: Path,
    *,
    domain_id: int | None = None,
    denied_sample: int = 3,
    intruder_dir: Path | None = None,
    intruder_topics: int = 4,
    middleware: str = CYCLONEDDS,
) -> VerifyPlan:
    """Build the plan: every granted flow between enclaves, ``denied_sample`` refusals per enclave.

    ``intruder_dir`` holds a keystore signed by a foreign CA (see make_foreign_keystore); without it
    only the unsecured intruder is planned.  Revoked enclaves of the keystore join as intruders
    that try what their grant allowed.

    :raises InputError: ``domain_id`` is not one of the policy's domains.
    """
    layout = KeystoreLayout(keystore_root)
    domain = policy.domain_ids[0] if domain_id is None else domain_id
    if domain not in policy.domain_ids:
        raise InputError(policy.source, "domain_ids", f"--domain-id to be one of the policy's domains "
                         f"{list(policy.domain_ids)} (permissions grant no other)", str(domain))
    revoked = sorted(path for path in revoked_current_enclaves(layout) if policy.enclave(path) is not None)
    grants = {e.path: compute_dds_grants(e) for e in policy.enclaves}
    pub = {path: set(_concrete(g.publish)) for path, g in grants.items()}
    sub = {path: set(_concrete(g.subscribe)) for path, g in grants.items()}
    universe = sorted(set().union(*pub.values(), *sub.values())) if grants else []
    live_pub = {path: topics for path, topics in pub.items() if path not in revoked}
    live_sub = {path: topics for path, topics in sub.items() if path not in revoked}
    flows = _flows(live_pub, live_sub)

    agents: list[AgentSpec] = []
    refused_writers: list[tuple[str, str]] = []
    refused_readers: list[tuple[str, str]] = []
    for path in sorted(grants):
        if path in revoked:
            agents.append(AgentSpec(REVOKED_PREFIX + path, domain, layout.enclave_dir(path), tuple(sorted(pub[path])),
                                    tuple(sorted(sub[path])), middleware=middleware))
            continue
        deny_w = _spread([t for t in universe if t not in pub[path]], denied_sample)
        deny_r = _spread([t for t in universe if t not in sub[path]], denied_sample)
        refused_writers += [(path, t) for t in deny_w]
        refused_readers += [(path, t) for t in deny_r]
        agents.append(AgentSpec(path, domain, layout.enclave_dir(path), tuple(sorted(pub[path])) + tuple(deny_w),
                                tuple(sorted(sub[path])) + tuple(deny_r), middleware=middleware))
    targets = _spread(sorted({f.topic for f in flows if f.topic.startswith("rt/")}), intruder_topics)
    intruders = [UNSECURED]
    agents.append(AgentSpec(UNSECURED, domain, None, tuple(targets), tuple(targets), middleware=middleware))
    if intruder_dir is not None:
        intruders.append(FOREIGN_CA)
        enclave = KeystoreLayout(intruder_dir).enclave_dir(INTRUDER_ENCLAVE)
        agents.append(AgentSpec(FOREIGN_CA, domain, enclave, tuple(targets), tuple(targets), middleware=middleware))
    return VerifyPlan(
        domain_id=domain, agents=tuple(agents), flows=tuple(flows), refused_writers=tuple(refused_writers),
        refused_readers=tuple(refused_readers), intruders=tuple(intruders + [REVOKED_PREFIX + p for p in revoked]),
        intruder_topics=tuple(targets), middleware=middleware, revoked=tuple(revoked),
    )


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
