"""Ownership: node reporters own their enclave and nodes; host reporters their host's subjects."""

from __future__ import annotations

import dataclasses

from cobot_security.health.ownership import HostAssignment, is_host_reporter, owned_subjects
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding, Level

REPORTER = "/cobot_security/health_reporter"


def _single_host(policy: WorkcellPolicy) -> WorkcellPolicy:
    """The example cell as if it ran on one machine (no hosts: in the policy)."""
    return dataclasses.replace(policy, hosts=(),
                               enclaves=tuple(dataclasses.replace(e, hosts=()) for e in policy.enclaves))


def _f(check: str, subject: str, enclave: str | None = None) -> Finding:
    return Finding(check, subject, Level.OK, "ok", (("enclave", enclave),) if enclave else ())


def test_host_reporters_are_the_stack_reporting_nodes(example_policy_path) -> None:
    policy = load_policy(example_policy_path)
    assert is_host_reporter(policy, REPORTER)
    assert is_host_reporter(policy, "/cobot_security/keystore_manager")
    assert not is_host_reporter(policy, "/cobot_security/supervisor")
    assert not is_host_reporter(policy, "/cell/arm_driver")
    assert not is_host_reporter(None, REPORTER)


def test_node_reporter_owns_its_enclave_and_nodes_only(example_policy_path) -> None:
    policy = load_policy(example_policy_path)
    owns = owned_subjects(policy, "/cell/vision", "vision_pc")
    assert owns(_f("cert_expiry", "/cell/vision"))
    assert owns(_f("key_modes", "/cell/vision", "/cell/vision"))
    assert owns(_f("graph_conformance", "/cell/camera"))  # a node of its enclave
    assert not owns(_f("cert_expiry", "/cell/arm_driver"))
    assert not owns(_f("key_modes", "/cell/vision", "/cell/arm_driver"))
    assert not owns(_f("keystore_integrity", "/keystore"))
    assert not owns(_f("security_env", "/vision_pc"))
    assert not owns(_f("reporter_liveness", "/cell/vision"))
    assert not owned_subjects(policy, "/cell/vision", "cell_pc")(_f("cert_expiry", "/cell/vision"))


def test_single_host_reporter_owns_every_subject_but_the_supervisors(example_policy_path) -> None:
    policy = _single_host(load_policy(example_policy_path))
    owns = owned_subjects(policy, REPORTER, "cellpc")
    for finding in (_f("cert_expiry", "/cell/arm_driver"), _f("keystore_integrity", "/keystore"),
                    _f("graph_conformance", "/cell/rogue_laptop"), _f("security_env", "/cellpc")):
        assert owns(finding), finding
    assert not owns(_f("reporter_liveness", "/cellpc/cobot_security/health_reporter"))
    assert not owns(_f("incident_plan", "/plan"))
    assert not owns(_f("health_signature", REPORTER))


def test_unknown_enclave_and_no_policy_fall_back_to_the_node_rule(example_policy_path) -> None:
    policy = _single_host(load_policy(example_policy_path))
    orphan = owned_subjects(policy, "/old/removed", "cellpc")
    assert orphan(_f("cert_expiry", "/old/removed"))
    assert not orphan(_f("keystore_integrity", "/keystore"))
    blind = owned_subjects(None, REPORTER, "cellpc")
    assert blind(_f("cert_expiry", REPORTER))
    assert not blind(_f("cert_expiry", "/cell/arm_driver"))


def test_multi_host_reporter_owns_its_hosts_enclaves(example_policy_path) -> None:
    policy = load_policy(example_policy_path)
    hosts = HostAssignment(frozenset({"cell_pc", "vision_pc"}), {
        REPORTER: frozenset({"cell_pc", "vision_pc"}),
        "/cell/arm_driver": frozenset({"cell_pc"}),
        "/cell/vision": frozenset({"vision_pc"}),
    })
    on_cell = owned_subjects(policy, REPORTER, "cell_pc", hosts)
    assert on_cell(_f("cert_expiry", "/cell/arm_driver"))
    assert on_cell(_f("keystore_integrity", "/keystore"))
    assert on_cell(_f("security_env", "/cell_pc"))
    assert not on_cell(_f("cert_expiry", "/cell/vision"))
    assert not on_cell(_f("graph_conformance", "/cell/detector"))  # a node of /cell/vision
    assert not on_cell(_f("key_modes", "/x", "/cell/vision"))
    assert not on_cell(_f("security_env", "/vision_pc"))
    # a node reporter claiming a host it is not assigned to owns nothing
    assert not owned_subjects(policy, "/cell/vision", "cell_pc", hosts)(_f("cert_expiry", "/cell/vision"))
    assert owned_subjects(policy, "/cell/vision", "vision_pc", hosts)(_f("cert_expiry", "/cell/vision"))


def test_the_policys_hosts_decide_ownership(example_policy_path) -> None:
    policy = load_policy(example_policy_path)  # the example cell names its hosts
    on_vision = owned_subjects(policy, REPORTER, "vision_pc")
    assert on_vision(_f("cert_expiry", "/cell/vision"))
    assert not on_vision(_f("cert_expiry", "/cell/arm_driver"))
    assert not owned_subjects(policy, REPORTER, "not_a_host")(_f("cert_expiry", "/cell/vision"))
