"""Drift probe: live endpoints the policy does not grant, with the YAML that would grant them (POLICY_DRIFT).

Graph conformance says whether a node belongs where it runs; this probe compares *every* endpoint
the graph reports for a node — publishers, subscribers, service servers and clients, action
servers and clients, folded as ``policy learn`` folds them (builtins, action parts) — with the
node's grants.  Each drifting node gets one ERROR finding naming the ungranted endpoints and, in
``grant_yaml``, the exact policy lines to add (or the whole enclave for a node the policy lacks),
so that widening the policy is a reviewed edit rather than a wildcard.
"""

from __future__ import annotations

import yaml

from cobot_security import checks
from cobot_security.health.graph_probes import GraphFacts
from cobot_security.policy.export import enclave_document
from cobot_security.policy.learn import covers, node_grants_of, relative_name
from cobot_security.policy.lint import grant_field_name
from cobot_security.policy.model import Enclave, NodeGrants, WorkcellPolicy
from cobot_security.policy.observation import ENDPOINT_FIELDS, NodeSample, fold_sample
from cobot_security.status import Finding, Level

#: Longest grant_yaml value published (a flood of endpoints must not make a huge status).
MAX_YAML_CHARS = 4000


def _where(policy: WorkcellPolicy, fqn: str) -> tuple[Enclave, NodeGrants] | None:
    for enclave in policy.enclaves:
        for node in enclave.nodes:
            if node.fqn == fqn:
                return enclave, node
    return None


def _sections(node: NodeGrants, missing: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    for kind, names in missing.items():
        section, key = grant_field_name(kind).split(".")
        sections.setdefault(section, {})[key] = [relative_name(n, node.name, node.namespace) for n in names]
    return sections


def grant_yaml(policy: WorkcellPolicy, sample: NodeSample, missing: dict[str, list[str]]) -> str:
    """The policy YAML lines that grant ``missing`` (absolute names per grant field) to the sample's node."""
    found = _where(policy, sample.fqn)
    if found is None:
        grants = node_grants_of(sample.name, sample.namespace, missing)
        path = sample.enclave if sample.enclave != "/" else sample.fqn
        body: object = enclave_document(Enclave(path=path, nodes=(grants,)))
    else:
        enclave, node = found
        sections = _sections(node, missing)
        body = sections if len(enclave.nodes) == 1 else {"nodes": [{"name": node.name, **sections}]}
        path = enclave.path
    text = yaml.safe_dump({"enclaves": {path: body}}, default_flow_style=None, sort_keys=False, width=100)
    return text if len(text) <= MAX_YAML_CHARS else text[:MAX_YAML_CHARS] + "\n# ... (truncated)\n"


def _missing(policy: WorkcellPolicy, sample: NodeSample) -> dict[str, list[str]]:
    found = _where(policy, sample.fqn)
    observed = fold_sample(sample)
    missing = {}
    for kind in ENDPOINT_FIELDS:
        names = sorted(n for n in observed[kind] if found is None or not covers(found[1], kind, n))
        if names:
            missing[kind] = names
    return missing


def probe_policy_drift(graph: GraphFacts, policy: WorkcellPolicy) -> list[Finding]:
    """POLICY_DRIFT per non-hidden node with endpoint facts: ERROR with grant_yaml, or OK."""
    findings = []
    for sample in sorted(graph.endpoints, key=lambda s: s.fqn):
        if sample.name.startswith("_"):
            continue
        values: tuple[tuple[str, str], ...] = (("enclave", sample.enclave),)
        missing = _missing(policy, sample)
        if not missing:
            findings.append(Finding(checks.POLICY_DRIFT, sample.fqn, Level.OK,
                                    "every observed endpoint is granted", values))
            continue
        listed = "; ".join(f"{grant_field_name(k)}: {', '.join(names)}" for k, names in missing.items())
        count = sum(len(names) for names in missing.values())
        findings.append(Finding(
            checks.POLICY_DRIFT, sample.fqn, Level.ERROR,
            f"{count} observed endpoint(s) not granted by the policy ({listed})",
            values + (("grant_yaml", grant_yaml(policy, sample, missing)),)))
    return findings
