"""sros2 policy XML → model: the oracle samples reproduce sros2's grants, unsafe XML is refused.

Comparability with the oracle's expected_permissions/<name>.permissions.xml: those files are the
output of sros2's bare permissions.xsl, i.e. exactly the rules the policy declares (including the
common/node.xml includes: rosout, /clock, parameter events and parameter services) and NO
ros_discovery_info rule.  Importing with ``builtins=False`` keeps exactly the declared rules, so the
per-grant publish and subscribe topic sets must then be equal, not merely overlapping.  With the
default ``builtins=True`` our grants are a superset (ros_discovery_info, get_type_description).
Validity dates and domain ids are not compared (they are inputs of compilation, not of the policy).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from lxml import etree

from cobot_security.errors import InputError, PolicyError
from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.model import GovernanceOptions
from cobot_security.policy.sros2_import import (
    import_sros2_policy,
    import_sros2_policy_bytes,
)

ORACLE_SAMPLES = ["sample", "talker_listener", "add_two_ints", "minimal_action", "single_context"]


def _expected_grants(path: Path) -> dict[str, tuple[set[str], set[str]]]:
    root = etree.parse(str(path)).getroot()
    return {
        grant.get("name"): (
            {t.text for t in grant.findall("allow_rule/publish/topics/topic")},
            {t.text for t in grant.findall("allow_rule/subscribe/topics/topic")},
        )
        for grant in root.iter("grant")
    }


@pytest.mark.parametrize("name", ORACLE_SAMPLES)
def test_oracle_samples_match_expected_permissions(oracles: Path, name: str) -> None:
    policies = oracles / "test_policies"
    policy = import_sros2_policy(policies / f"{name}.policy.xml", builtins=False)
    expected = _expected_grants(policies / "expected_permissions" / f"{name}.permissions.xml")
    assert sorted(e.path for e in policy.enclaves) == sorted(expected)
    for enclave in policy.enclaves:
        grants = compute_dds_grants(enclave)
        publish, subscribe = expected[enclave.path]
        assert set(grants.publish) == publish, enclave.path
        assert set(grants.subscribe) == subscribe, enclave.path


def test_default_builtins_is_a_superset(oracles: Path) -> None:
    policies = oracles / "test_policies"
    policy = import_sros2_policy(policies / "talker_listener.policy.xml")
    expected = _expected_grants(policies / "expected_permissions" / "talker_listener.permissions.xml")
    for enclave in policy.enclaves:
        grants = compute_dds_grants(enclave)
        assert expected[enclave.path][0] < set(grants.publish)
        assert "ros_discovery_info" in grants.publish and "ros_discovery_info" in grants.subscribe


def test_sample_model_shape(oracles: Path) -> None:
    policy = import_sros2_policy(oracles / "test_policies" / "sample.policy.xml", domain_ids=(42,))
    assert policy.name == "sample" and policy.domain_ids == (42,) and policy.version == 1
    assert policy.governance == GovernanceOptions()
    admin = policy.enclave("/sample_policy/admin")
    assert admin is not None and len(admin.nodes) == 1
    node = admin.nodes[0]
    assert (node.name, node.namespace) == ("admin", "/")
    assert node.actions_serve == ("fibonacci",) and node.actions_call == ("fibonacci",)
    assert "add_two_ints" in node.services_serve and "add_two_ints" in node.services_call
    assert node.publish == ("rosout", "/parameter_events", "chatter")
    assert node.subscribe == ("/clock", "/parameter_events", "chatter")
    assert node.line == 13


def test_single_context_becomes_nodes(oracles: Path) -> None:
    policy = import_sros2_policy(oracles / "test_policies" / "single_context.policy.xml")
    assert [e.path for e in policy.enclaves] == ["/single_enclave"]
    assert [n.name for n in policy.enclaves[0].nodes] == [
        "talker", "listener", "add_two_ints_server", "add_two_ints_client", "minimal_action_server",
        "minimal_action_client",
    ]


def test_multiple_profiles_and_local_include(sros2_assets: Path) -> None:
    policy = import_sros2_policy(sros2_assets / "two_profiles.policy.xml", builtins=False)
    camera, detector = policy.enclaves[0].nodes
    assert camera.fqn == "/cell/camera" and camera.publish == ("rosout", "image_raw")
    assert detector.subscribe == ("image_raw",) and detector.publish == ("detections",)
    assert detector.services_serve == ("~/reset",) and detector.actions_call == ("/cell/arm/move",)
    assert policy.enclaves[0].builtins is False and policy.name == "two_profiles"


def test_redundant_deny_is_dropped(sros2_assets: Path) -> None:
    policy = import_sros2_policy(sros2_assets / "deny_redundant.policy.xml")
    node = policy.enclaves[0].nodes[0]
    assert node.publish == ("chatter",)


def test_deny_narrowing_a_wildcard_is_refused(sros2_assets: Path) -> None:
    path = sros2_assets / "deny_narrowing.policy.xml"
    with pytest.raises(PolicyError, match=re.escape(f"{path}:10: ")) as info:
        import_sros2_policy(path)
    assert info.value.field == "enclave[@path='/cell/talker']/topics/@publish"
    assert "DENY" in info.value.expected and "rt/cell/estop" in str(info.value.got)


def test_billion_laughs_is_refused_unexpanded(sros2_assets: Path) -> None:
    path = sros2_assets / "billion_laughs.policy.xml"
    started = time.perf_counter()
    with pytest.raises(InputError, match="ENTITY") as info:
        import_sros2_policy(path)
    assert time.perf_counter() - started < 5
    assert "lollol" not in str(info.value)
    assert info.value.field == "DOCTYPE"


def test_single_entity_is_refused_even_in_utf16() -> None:
    text = '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY t "chatter">]><policy version="0.2.0"/>'
    for data in (text.encode(), text.replace("1.0\"?>", "1.0\" encoding=\"UTF-16\"?>").encode("utf-16")):
        with pytest.raises(InputError, match="ENTITY") as info:
            import_sros2_policy_bytes(data, "mem.policy.xml")
        assert info.value.file == "mem.policy.xml"


def test_doctype_without_entities_is_refused() -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE policy SYSTEM "http://example.invalid/p.dtd"><policy version="0.2.0"/>'
    with pytest.raises(InputError, match="DOCTYPE") as info:
        import_sros2_policy_bytes(data, "mem.policy.xml")
    assert info.value.got == "a DOCTYPE"


def test_entity_in_included_file_is_refused(sros2_assets: Path) -> None:
    with pytest.raises(InputError, match="ENTITY") as info:
        import_sros2_policy(sros2_assets / "include_included_entity.policy.xml")
    assert info.value.file == str(sros2_assets / "common" / "entity.xml")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("include_network.policy.xml", "a relative href to a local file"),
        ("include_outside.policy.xml", "an included file inside"),
        ("include_text.policy.xml", 'parse="xml"'),
        ("include_self.policy.xml", "no recursive"),
    ],
)
def test_unsafe_includes_are_refused(sros2_assets: Path, name: str, expected: str) -> None:
    path = sros2_assets / name
    with pytest.raises(PolicyError, match=re.escape(expected)) as info:
        import_sros2_policy(path)
    assert info.value.file == str(path.resolve())
    assert info.value.field == "xi:include"
    assert info.value.line is not None


def test_bad_names_are_located(sros2_assets: Path) -> None:
    path = sros2_assets / "bad_names.policy.xml"
    with pytest.raises(PolicyError, match=re.escape(f"{path}:10: ")) as info:
        import_sros2_policy(path)
    assert info.value.field == "enclave[@path='/cell/a']/profiles/profile[1]/topics/topic[2]"
    assert info.value.got == "'not ok'"


def test_bad_name_in_included_file_names_that_file(sros2_assets: Path) -> None:
    with pytest.raises(PolicyError, match="bad//name") as info:
        import_sros2_policy(sros2_assets / "bad_included_name.policy.xml")
    assert info.value.file == str(sros2_assets / "common" / "bad_topic.xml")
    assert info.value.line == 5


@pytest.mark.parametrize(
    ("xml", "field", "line"),
    [
        ('<policy version="0.1.0"><enclaves/></policy>', "policy/@version", 1),
        ('<policies version="0.2.0"/>', "policy", 1),
        ('<policy version="0.2.0">\n<enclaves/>\n</policy>', "policy/enclaves", 2),
        ('<policy version="0.2.0"><enclaves>\n<enclave path="cell"><profiles><profile node="a"/></profiles>'
         "</enclave></enclaves></policy>", "enclave[@path='cell']/@path", 2),
        ('<policy version="0.2.0"><enclaves>\n<enclave path="/a"><profiles>\n<profile node="a" ns="/">\n'
         '<topics publish="MAYBE"><topic>x</topic></topics></profile></profiles></enclave></enclaves></policy>',
         "enclave[@path='/a']/profiles/profile[1]/topics/@publish", 4),
        ('<policy version="0.2.0"><enclaves>\n<enclave path="/a"><profiles>\n<profile node="a" ns="/">\n'
         '<topics reply="ALLOW"><topic>x</topic></topics></profile></profiles></enclave></enclaves></policy>',
         "enclave[@path='/a']/profiles/profile[1]/topics/@reply", 4),
        ('<policy version="0.2.0"><enclaves>\n<enclave path="/a"><profiles>\n<profile node="a" ns="/">\n'
         '<topics publish="ALLOW"><service>x</service></topics></profile></profiles></enclave></enclaves></policy>',
         "enclave[@path='/a']/profiles/profile[1]/topics/topic[1]", 4),
        ('<policy version="0.2.0"><enclaves>\n<enclave path="/a"><profiles>\n<profile ns="/"/>'
         "</profiles></enclave></enclaves></policy>", "enclave[@path='/a']/profiles/profile[1]/@node", 3),
        ('<policy version="0.2.0"><enclaves>\n<enclave path="/a"><profiles>\n<profile node="a" ns="/"/>\n'
         '</profiles></enclave>\n<enclave path="/a/b"><profiles><profile node="b" ns="/"/></profiles></enclave>'
         "</enclaves></policy>", "enclaves./a/b", 5),
        ('<policy version="0.2.0"><enclaves>\n<enclave path="/a"><profiles>\n<profile node="a" ns="/"/>\n'
         '</profiles></enclave>\n<enclave path="/b"><profiles><profile node="a" ns="/"/></profiles></enclave>'
         "</enclaves></policy>", "enclaves./b.node", 5),
        ("<policy", None, 1),
    ],
)
def test_malformed_sros2_policies(xml: str, field: str | None, line: int) -> None:
    with pytest.raises(InputError, match=re.escape("mem.policy.xml:")) as info:
        import_sros2_policy_bytes(xml.encode(), "mem.policy.xml")
    assert info.value.field == field
    assert info.value.line == line


def test_bad_domain_id_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="domain ids 0..232") as info:
        import_sros2_policy_bytes(b"<policy/>", "mem.policy.xml", domain_ids=(300,))
    assert info.value.got == "300"
    with pytest.raises(PolicyError, match="readable sros2 policy file") as missing:
        import_sros2_policy(tmp_path / "absent.policy.xml")
    assert missing.value.file == str(tmp_path / "absent.policy.xml")
