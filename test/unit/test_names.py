"""Name rules (cobot_security.names): names are matched whole and bounded in length.

Issue 16: ``^…$`` with ``re.match`` let ``"arm_driver\\n"`` through (``$`` matches before a final
newline), so ``init`` created ``enclaves/cell\\n/`` and certificates with that CN.  Lengths are
bounded by what consumes the names: the certificate CN (64) and rmw's limits.
"""

from __future__ import annotations

import pytest

from cobot_security.errors import InvalidNameError
from cobot_security.names import (
    MAX_ENCLAVE_PATH_LENGTH,
    MAX_NAMESPACE_LENGTH,
    MAX_NODE_NAME_LENGTH,
    MAX_TOPIC_NAME_LENGTH,
    NameContext,
    is_snake_case,
    validate_enclave_path,
    validate_grant_name,
    validate_namespace,
    validate_node_name,
    validate_ros_name,
)

WHERE = NameContext(file="cell.yaml", field="enclaves", line=3)
#: Line breaks and other characters a ``$`` anchor or a sloppy pattern could let through at the end.
TAILS = ["\n", "\r", "\r\n", "\x00", " ", "\t", "\u2028"]


@pytest.mark.parametrize("tail", TAILS, ids=repr)
@pytest.mark.parametrize(("validate", "good"), [
    (validate_enclave_path, "/cell/arm_driver"),
    (validate_node_name, "arm_driver"),
    (validate_namespace, "/cell"),
    (validate_ros_name, "joint_states"),
    (validate_ros_name, "~/status"),
    (validate_ros_name, "/cell/arm*"),
], ids=["enclave", "node", "namespace", "topic", "private", "wildcard"])
def test_a_trailing_line_break_or_space_is_refused(validate, good: str, tail: str) -> None:
    assert validate(good, WHERE) == good
    with pytest.raises(InvalidNameError) as caught:
        validate(good + tail, WHERE)
    message = str(caught.value)
    assert message.startswith("cell.yaml:3: enclaves: expected ")
    assert "\n" not in message and "\r" not in message  # the error itself stays one line
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("tail", TAILS, ids=repr)
def test_a_trailing_line_break_inside_a_token_is_refused(tail: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_enclave_path("/cell" + tail + "/arm_driver")
    with pytest.raises(InvalidNameError):
        validate_ros_name("cell" + tail + "/joint_states")
    with pytest.raises(InvalidNameError):
        validate_grant_name("joint_states" + tail, "arm", "/cell")


def test_snake_case_is_matched_whole() -> None:
    assert is_snake_case("per_node_identity")
    for bad in ("per_node_identity\n", "per_node_identity\r\n", "Per_node", "per__node", "per_node_", "", "1abc"):
        assert not is_snake_case(bad), repr(bad)


@pytest.mark.parametrize(("validate", "limit", "make"), [
    (validate_enclave_path, MAX_ENCLAVE_PATH_LENGTH, lambda n: "/" + "a" * (n - 1)),
    (validate_enclave_path, MAX_ENCLAVE_PATH_LENGTH, lambda n: "/cell/" + "a" * (n - 6)),
    (validate_node_name, MAX_NODE_NAME_LENGTH, lambda n: "a" * n),
    (validate_namespace, MAX_NAMESPACE_LENGTH, lambda n: "/" + "a" * (n - 1)),
    (validate_ros_name, MAX_TOPIC_NAME_LENGTH, lambda n: "a" * n),
    (validate_ros_name, MAX_TOPIC_NAME_LENGTH, lambda n: "/" + "a" * (n - 1)),
], ids=["enclave", "enclave-deep", "node", "namespace", "topic", "absolute-topic"])
def test_lengths_at_and_just_over_the_limit(validate, limit: int, make) -> None:
    assert validate(make(limit), WHERE) == make(limit)
    with pytest.raises(InvalidNameError, match=f"of at most {limit} characters") as caught:
        validate(make(limit + 1), WHERE)
    assert f"({limit + 1} characters)" in str(caught.value)


def test_the_enclave_limit_is_the_certificate_cn_limit() -> None:
    # The CN is the enclave path; cryptography refuses a CN over 64 characters (X.509 ub-common-name).
    from cryptography import x509

    x509.Name.from_rfc4514_string("CN=/" + "a" * (MAX_ENCLAVE_PATH_LENGTH - 1))
    with pytest.raises(ValueError):
        x509.Name.from_rfc4514_string("CN=/" + "a" * MAX_ENCLAVE_PATH_LENGTH)


def test_grant_names_are_bounded_once_resolved() -> None:
    namespace = "/" + "n" * 199
    fits = "t" * (MAX_TOPIC_NAME_LENGTH - len(namespace) - 1)  # /nnn…/ttt is exactly the limit
    assert validate_grant_name(fits, "arm", namespace) == fits
    with pytest.raises(InvalidNameError, match="at most 247 characters once resolved, got '/nnn"):
        validate_grant_name(fits + "t", "arm", namespace)
    with pytest.raises(InvalidNameError, match="once resolved"):
        validate_grant_name("~/" + fits[: -len("arm/") + 1], "arm", namespace)  # ~/ adds the node name
    # An action keeps room for its longest /_action/... suffix (/_action/cancel_goal, 20 characters).
    with pytest.raises(InvalidNameError, match="at most 227 characters once resolved.*_action"):
        validate_grant_name(fits, "arm", namespace, action=True)
    assert validate_grant_name(fits[:-20], "arm", namespace, action=True) == fits[:-20]
