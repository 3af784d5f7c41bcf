"""Hosts in the policy: which machine runs which enclave, validated like the rest (file:line:field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cobot_security.errors import PolicyError
from cobot_security.policy.export import dump_policy_yaml
from cobot_security.policy.load import load_policy, load_policy_text

CELL = """\
version: 1
name: two_pcs
domain_ids: [1]
hosts:
  ca_pc: {role: authority, description: CA machine}
  cell_pc: {}
enclaves:
  /cell/arm: {node: arm, hosts: [cell_pc]}
  /cell/reporter:
    nodes: [{name: reporter}]
    hosts: [cell_pc, ca_pc]
"""


def test_hosts_and_their_enclaves() -> None:
    policy = load_policy_text(CELL, "cell.yaml")
    assert [(h.name, h.role, h.description) for h in policy.hosts] == [
        ("ca_pc", "authority", "CA machine"), ("cell_pc", "member", "")]
    assert [e.path for e in policy.enclaves_on("cell_pc")] == ["/cell/arm", "/cell/reporter"]
    assert [e.path for e in policy.enclaves_on("ca_pc")] == ["/cell/reporter"]
    assert policy.enclaves_on("nobody") == ()
    assert policy.hosts_of("/cell/reporter") == ("cell_pc", "ca_pc")
    assert [e.path for e in policy.for_host("ca_pc").enclaves] == ["/cell/reporter"]
    assert load_policy_text(dump_policy_yaml(policy), "again.yaml") == policy


def test_the_example_cell_has_its_machines(example_policy_path: Path) -> None:
    policy = load_policy(example_policy_path)
    assert [h.name for h in policy.hosts] == ["ca_pc", "cell_pc", "vision_pc", "edge_pc"]
    assert [h.name for h in policy.hosts if h.role == "authority"] == ["ca_pc"]
    assert [e.path for e in policy.enclaves_on("vision_pc")] == [
        "/cell/vision", "/cobot_security/health_reporter", "/cobot_security/keystore_manager",
        "/cobot_security/launch_listener"]
    assert all(enclave.hosts for enclave in policy.enclaves)


@pytest.mark.parametrize(("edit", "message"), [
    (("hosts: [cell_pc]}", "hosts: [vision_pc]}"),
     "cell.yaml:8: enclaves./cell/arm.hosts[0]: expected one of the hosts ca_pc, cell_pc, got 'vision_pc'"),
    (("{node: arm, hosts: [cell_pc]}", "{node: arm}"),
     "cell.yaml:8: enclaves./cell/arm.hosts: expected a non-empty list of hosts named under the top-level hosts:"),
    (("hosts: [cell_pc]}", "hosts: []}"), "cell.yaml:8: enclaves./cell/arm.hosts: expected a non-empty list"),
    (("hosts: [cell_pc]}", "hosts: [cell_pc, cell_pc]}"), "enclaves./cell/arm.hosts[1]: expected each host once"),
    (("cell_pc: {}", "cell_pc: {role: authority}"), "cell.yaml:6: hosts.cell_pc.role: expected one authority host"),
    (("cell_pc: {}", "cell_pc: {role: boss}"), "hosts.cell_pc.role: expected authority or member, got 'boss'"),
    (("cell_pc: {}", "cell_pc: {owner: me}"), "hosts.cell_pc.owner: expected one of the keys role, description"),
    (("  cell_pc: {}", "  Cell-PC: {}"), "cell.yaml:6: hosts.Cell-PC: expected a host name of lower-case letters"),
    (("hosts:\n  ca_pc: {role: authority, description: CA machine}\n  cell_pc: {}\n", ""),
     "enclaves./cell/arm.hosts: expected no hosts: list without a top-level hosts: mapping"),
])
def test_host_mistakes_name_file_line_and_field(edit: tuple[str, str], message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(CELL.replace(*edit), "cell.yaml")
    assert message in str(caught.value)


def test_a_policy_without_hosts_is_one_machine() -> None:
    text = "version: 1\nname: x\ndomain_ids: [1]\nenclaves:\n  /a: {node: a}\n"
    policy = load_policy_text(text, "x.yaml")
    assert policy.hosts == () and policy.enclaves[0].hosts == ()
