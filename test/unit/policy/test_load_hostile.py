"""Hostile policies (issue 16): names with a trailing newline, lifetimes that kill the cell, long
names, deep nesting, huge numbers.  Each is a one-line PolicyError naming file, line and field."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from cobot_security.errors import PolicyError
from cobot_security.policy.load import load_policy_text

HEAD = "version: 1\nname: c\ndomain_ids: [0]\n"


def _load_error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "cell.yaml")
    message = str(caught.value)
    assert message.startswith("cell.yaml:"), message
    assert "\n" not in message and "\r" not in message, message
    return caught.value


# Every kind of name the policy holds, each with a trailing newline (YAML "\n" escapes, and a
# literal block scalar "|" which keeps the final line break).
NEWLINE_NAMES = [
    ('enclaves:\n  "/cell\\n": {node: a}\n', 'enclaves./cell\n', 5),
    ('enclaves:\n  /cell/a: {node: "a\\n"}\n', "enclaves./cell/a.node", 5),
    ('enclaves:\n  /cell/a: {node: a, namespace: "/cell\\n"}\n', "enclaves./cell/a.namespace", 5),
    ('enclaves:\n  /cell/a:\n    nodes:\n      - name: "a\\n"\n', "enclaves./cell/a.nodes[0].name", 7),
    ('enclaves:\n  /cell/a: {node: a, topics: {publish: ["joint_states\\n"]}}\n',
     "enclaves./cell/a.topics.publish[0]", 5),
    ('enclaves:\n  /cell/a:\n    node: a\n    topics:\n      subscribe:\n        - |\n          cmd\n',
     "enclaves./cell/a.topics.subscribe[0]", 9),
    ('enclaves:\n  /cell/a: {node: a, services: {serve: ["~/set\\n"]}}\n', "enclaves./cell/a.services.serve[0]", 5),
    ('enclaves:\n  /cell/a: {node: a, services: {call: ["/s\\n"]}}\n', "enclaves./cell/a.services.call[0]", 5),
    ('enclaves:\n  /cell/a: {node: a, actions: {serve: ["go\\n"]}}\n', "enclaves./cell/a.actions.serve[0]", 5),
    ('enclaves:\n  /cell/a: {node: a, actions: {call: ["go*\\n"]}}\n', "enclaves./cell/a.actions.call[0]", 5),
]


@pytest.mark.parametrize(("body", "field", "line"), NEWLINE_NAMES, ids=[case[1] for case in NEWLINE_NAMES])
def test_names_with_a_trailing_newline_are_refused(body: str, field: str, line: int) -> None:
    error = _load_error(HEAD + body)
    assert (error.field, error.line) == (field, line)
    assert "\\n" in str(error)  # shown escaped, so the reader sees why


# (certificates section, field, expected fragment) — the "a cell that dies a second later"
LIFETIMES = [
    ("{enclave: {duration: 1s, renew_before: 1s}}", "certificates.enclave.duration", "between 1h and 36500d"),
    ("{enclave: {duration: 59m}}", "certificates.enclave.duration", "between 1h and 36500d"),
    ("{ca: {duration: 1s}}", "certificates.ca.duration", "between 1d and 36500d"),
    ("{ca: {duration: 23h}}", "certificates.ca.duration", "between 1d and 36500d"),
    ("{crl: {next_update: 1s}}", "certificates.crl.next_update", "between 1h and 90d"),
    ("{crl: {next_update: 91d}}", "certificates.crl.next_update", "between 1h and 90d"),
    ("{enclave: {duration: 2h, renew_before: 14m}}", "certificates.enclave.renew_before", "between 15m and 36500d"),
    ("{ca: {duration: 36500000d}}", "certificates.ca.duration", "between 1d and 36500d"),
    ("{crl: {next_update: 999999999999999999d}}", "certificates.crl.next_update", "between 1h and 90d"),
    ("{enclave: {duration: 90d}, ca: {duration: 30d}}", "certificates.enclave.duration",
     "no longer than the CA duration 30d"),
    ("{ca: {duration: 30d}}", "certificates.enclave.duration", "no longer than the CA duration 30d"),
    ("{enclave: {duration: 2h, renew_before: 2h}}", "certificates.enclave.renew_before",
     "shorter than the enclave duration 2h"),
]


@pytest.mark.parametrize(("certificates", "field", "expected"), LIFETIMES, ids=[c[0] for c in LIFETIMES])
def test_lifetimes_outside_their_bounds_are_refused(certificates: str, field: str, expected: str) -> None:
    error = _load_error(HEAD + f"certificates: {certificates}\nenclaves: {{/a: {{node: a}}}}\n")
    assert error.field == field
    assert error.line == 4
    assert expected in error.expected


def test_lifetimes_at_their_bounds_load() -> None:
    policy = load_policy_text(HEAD + "certificates: {ca: {duration: 1d}, enclave: {duration: 1h, renew_before: 15m},"
                              " crl: {next_update: 1h}}\nenclaves: {/a: {node: a}}\n", "cell.yaml")
    hour = dt.timedelta(hours=1)
    assert (policy.lifetimes.ca_duration, policy.lifetimes.enclave_duration) == (24 * hour, hour)
    assert (policy.lifetimes.renew_before, policy.lifetimes.crl_next_update) == (hour / 4, hour)
    top = load_policy_text(HEAD + "certificates: {ca: {duration: 36500d}, enclave: {duration: 36500d},"
                           " crl: {next_update: 90d}}\nenclaves: {/a: {node: a}}\n", "cell.yaml")
    assert top.lifetimes.enclave_duration == dt.timedelta(days=36500)


def test_a_300_character_enclave_name_fails_validation_not_init() -> None:
    name = "/" + "a" * 300
    error = _load_error(HEAD + f"enclaves:\n  {name}: {{node: a}}\n")
    assert error.line == 5
    assert "expected an enclave path (the certificate CN) of at most 64 characters" in str(error)
    assert "(301 characters)" in str(error)
    assert len(str(error)) < 600  # the 300 characters are clipped, not repeated in full


def test_deep_nesting_and_huge_numbers() -> None:
    deep = _load_error("[" * 1000)
    assert re.fullmatch(r"cell\.yaml:1: expected lists and mappings nested at most 32 deep, got deeper nesting",
                        str(deep))
    nested = _load_error(HEAD + "enclaves:\n  /a:\n    node: a\n    topics: {publish: " + "[" * 50 + "]" * 50 + "}\n")
    assert nested.line == 7
    number = _load_error(HEAD.replace("[0]", "[" + "9" * 5000 + "]") + "enclaves: {/a: {node: a}}\n")
    assert number.field == "domain_ids[0]"
