"""Run the verify plan on Zenoh: a router from the rendered configuration, one session per enclave (no zenoh import).

The plan's DDS names become rmw_zenoh keys (:func:`cobot_security.policy.keyexpr.proof_key`);
``ros_discovery_info`` has no Zenoh counterpart and is left out.  The router (its configuration
rendered by ``cobot-security render zenoh``, only its listen endpoint moved to a free loopback
port) is also the witness of what crossed it.  Zenoh refuses nothing at declaration time, so a
refusal is read from the witness after the run:

- a writer (put, query, reply) is *blocked* when neither the router nor any session saw it, while
  some other write of the same session did get through (so the session was alive and heard);
- a reader (subscriber, queryable, reply receiver) is *blocked* when it received nothing on that
  name, while it received the router's probe on some other name.

Without that positive control a refusal is reported as unproven, which fails the check.
"""

from __future__ import annotations

import datetime as _dt
import json
import socket
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from cobot_security.dds.plan import FOREIGN_CA, UNSECURED, Flow, VerifyPlan
from cobot_security.dds.runner import AgentResult, AgentSpec, ZenohSession, run_agents
from cobot_security.errors import DdsUnavailableError
from cobot_security.keystore.store import Keystore
from cobot_security.middleware.zenoh_render import ZenohLayout, default_zenoh_dir, render_zenoh, session_document
from cobot_security.policy.keyexpr import proof_key
from cobot_security.policy.model import WorkcellPolicy

if TYPE_CHECKING:
    from collections.abc import Callable

ROUTER = "zenoh:router"
BLOCKED = "blocked: nothing crossed the router (access control) (code -13)"
UNPROVEN = "unproven: nothing of this session crossed the router at all (code -1)"


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the router binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _zenoh_names(names: tuple[str, ...], domain: int) -> tuple[str, ...]:
    return tuple(name for name in names if proof_key(domain, name) is not None)


def _keys(names: set[str], domain: int) -> tuple[tuple[str, str], ...]:
    """Keys for every name and its service's other side (a query and its reply share one key)."""
    full = set(names)
    for name in names:
        if name.startswith("rq/"):
            full.add("rr/" + name[3:-len("Request")] + "Reply")
        elif name.startswith("rr/"):
            full.add("rq/" + name[3:-len("Reply")] + "Request")
    return tuple(sorted((name, key) for name in full if (key := proof_key(domain, name)) is not None))


def _session_spec(spec: AgentSpec, plan: VerifyPlan, zenoh: ZenohLayout, endpoint: str) -> AgentSpec:
    writers, readers = _zenoh_names(spec.writers, plan.domain_id), _zenoh_names(spec.readers, plan.domain_id)
    keys = _keys(set(writers) | set(readers), plan.domain_id)
    if spec.name == UNSECURED:
        document: dict[str, object] = {"mode": "client", "scouting": {"multicast": {"enabled": False}}}
        session = ZenohSession("session", "tcp" + endpoint[len("tls"):], keys, config_document=json.dumps(document))
    elif spec.name == FOREIGN_CA:
        assert spec.enclave_dir is not None
        document = session_document(spec.enclave_dir, endpoint)
        session = ZenohSession("session", endpoint, keys, config_document=json.dumps(document))
    else:
        enclave = spec.name.split(":", 1)[1] if ":" in spec.name else spec.name
        session = ZenohSession("session", endpoint, keys, config=zenoh.session_config(enclave))
    return replace(spec, writers=writers, readers=readers, zenoh=session)


def zenoh_plan(plan: VerifyPlan, zenoh: ZenohLayout, endpoint: str) -> VerifyPlan:
    """The plan on Zenoh: the router first, sessions from the rendered configs, DDS-only names dropped."""
    domain = plan.domain_id
    sessions = [_session_spec(spec, plan, zenoh, endpoint) for spec in plan.agents]
    probes = sorted({name if not name.startswith("rr/") else "rq/" + name[3:-len("Reply")] + "Request"
                     for spec in sessions for name in (*spec.writers, *spec.readers)})
    all_names = {name for spec in sessions for name in (*spec.writers, *spec.readers)}
    router = AgentSpec(ROUTER, domain, None, middleware=plan.middleware, start_alone=True,
                       zenoh=ZenohSession("router", endpoint, _keys(all_names, domain), config=zenoh.router_config,
                                          probes=tuple(probes)))
    return replace(
        plan,
        agents=(router, *sessions),
        flows=tuple(f for f in plan.flows if proof_key(domain, f.topic) is not None),
        refused_writers=tuple(p for p in plan.refused_writers if proof_key(domain, p[1]) is not None),
        refused_readers=tuple(p for p in plan.refused_readers if proof_key(domain, p[1]) is not None),
        intruder_topics=_zenoh_names(plan.intruder_topics, domain),
    )


def settle_observations(results: dict[str, AgentResult]) -> dict[str, AgentResult]:
    """Turn what the witness and the sessions saw into per-endpoint outcomes; drop the router.

    :raises DdsUnavailableError: the router itself could not start.
    """
    witness = results.pop(ROUTER)
    if not witness.participant_created:
        raise DdsUnavailableError(f"the Zenoh router could not start: {witness.participant_error}")
    seen = set(witness.received) | {pair for r in results.values() for pair in r.received}
    for result in results.values():
        if not result.participant_created:
            continue
        wrote = {name for name in result.writers if (name, result.name) in seen}
        heard = {name for name, _ in result.received}
        probed = {name for name, sender in result.received if sender == ROUTER}
        for name in result.writers:
            result.writers[name] = None if name in wrote else (BLOCKED if wrote else UNPROVEN)
        for name in result.readers:
            result.readers[name] = None if name in heard else (BLOCKED if probed else UNPROVEN)
        result.received = {(name, sender) for name, sender in result.received if sender != ROUTER}
    return results


def _flows_delivered(flows: tuple[Flow, ...]) -> Callable[[Mapping[str, AgentResult]], bool]:
    def done(results: Mapping[str, AgentResult]) -> bool:
        return all((f.topic, f.writer) in results[f.reader].received or not results[f.reader].participant_created
                   or not results[f.writer].participant_created for f in flows)
    return done


def run_zenoh_plan(plan: VerifyPlan, policy: WorkcellPolicy, keystore_root: Path, now: _dt.datetime, *,
                   zenoh_dir: Path | None = None, timeout_s: float = 60.0) -> tuple[VerifyPlan, dict[str, AgentResult]]:
    """Run ``plan`` on Zenoh against the rendered configuration (rendered first when absent).

    Returns the plan as run on Zenoh (what the verdicts are judged against) and the outcomes.

    :raises DdsUnavailableError: zenoh is not importable, or the router cannot start.
    :raises PassphraseError: rendering needs the identity CA key and cannot decrypt it.
    """
    zenoh = ZenohLayout(Path(zenoh_dir) if zenoh_dir is not None else default_zenoh_dir(keystore_root))
    if not zenoh.router_config.is_file():
        render_zenoh(Keystore.open(keystore_root), policy, zenoh.root, now)
    on_zenoh = zenoh_plan(plan, zenoh, f"tls/127.0.0.1:{free_loopback_port()}")
    results = run_agents(list(on_zenoh.agents), _flows_delivered(on_zenoh.flows), timeout_s=timeout_s, grace_s=2.0)
    return on_zenoh, settle_observations(results)
