"""WorkcellPolicy → policy YAML text (schema version 1) that ``load_policy_text`` reads back equal.

Used to write the result of ``import-sros2`` so that an integrator can review and edit it.  Every
section is written explicitly (governance and lifetimes included) so that the file states the
cell's security settings rather than relying on defaults; enclaves with one node use the
single-node shorthand.
"""

from __future__ import annotations

import yaml

from cobot_security.policy.model import Enclave, NodeGrants, WorkcellPolicy
from cobot_security.yaml_source import format_duration

__all__ = ["dump_policy_yaml", "format_duration"]


def _grant_sections(node: NodeGrants) -> dict[str, object]:
    sections: dict[str, object] = {}
    for section, pairs in (
        ("topics", (("publish", node.publish), ("subscribe", node.subscribe))),
        ("services", (("serve", node.services_serve), ("call", node.services_call))),
        ("actions", (("serve", node.actions_serve), ("call", node.actions_call))),
    ):
        present = {key: list(names) for key, names in pairs if names}
        if present:
            sections[section] = present
    return sections


def enclave_document(enclave: Enclave) -> dict[str, object]:
    """One enclave as the mapping the policy YAML writes under its path."""
    if len(enclave.nodes) == 1:
        node = enclave.nodes[0]
        body: dict[str, object] = {"node": node.name, "namespace": node.namespace, **_grant_sections(node)}
    else:
        body = {
            "nodes": [
                {"name": node.name, "namespace": node.namespace, **_grant_sections(node)} for node in enclave.nodes
            ]
        }
    body["builtins"] = enclave.builtins
    if enclave.hosts:
        body["hosts"] = list(enclave.hosts)
    return body


def dump_policy_yaml(policy: WorkcellPolicy, header: str | None = None) -> str:
    """YAML text of ``policy``; ``header`` (one or more lines) is written first as ``#`` comments.

    :raises ValueError: when a lifetime cannot be written as a schema duration.
    """
    gov = policy.governance
    lifetimes = policy.lifetimes
    document: dict[str, object] = {
        "version": policy.version,
        "name": policy.name,
        "domain_ids": list(policy.domain_ids),
        "middlewares": list(policy.middlewares),
        "governance": {
            "allow_unauthenticated_participants": gov.allow_unauthenticated_participants,
            "enable_join_access_control": gov.enable_join_access_control,
            "enable_read_access_control": gov.enable_read_access_control,
            "enable_write_access_control": gov.enable_write_access_control,
            "protection": {
                "rtps": gov.rtps_protection.value,
                "discovery": gov.discovery_protection.value,
                "liveliness": gov.liveliness_protection.value,
                "metadata": gov.metadata_protection.value,
                "data": gov.data_protection.value,
            },
        },
        "certificates": {
            "ca": {"duration": format_duration(lifetimes.ca_duration)},
            "enclave": {
                "duration": format_duration(lifetimes.enclave_duration),
                "renew_before": format_duration(lifetimes.renew_before),
            },
            "crl": {"next_update": format_duration(lifetimes.crl_next_update)},
        },
    }
    if policy.hosts:
        document["hosts"] = {host.name: {"role": host.role, **({"description": host.description}
                                                               if host.description else {})}
                             for host in policy.hosts}
    document["enclaves"] = {enclave.path: enclave_document(enclave) for enclave in policy.enclaves}
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
    if header is None:
        return body
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comments + body
