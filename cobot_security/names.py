"""ROS 2 name rules for enclaves, nodes and topics, and the DDS name mangling rmw applies (pure).

ROS names are validated as rcl does (tokens of letters, digits and underscores, not starting with a
digit, separated by single slashes); policies may use ``*`` wildcards inside tokens, which DDS
permissions match with fnmatch semantics.  Enclave paths additionally become directories, so they
are the first line of defence against path traversal.

Names are matched whole (``fullmatch``): ``$`` would also match before a final newline, letting
``"arm_driver\n"`` through.  Lengths are bounded by what consumes the names: an enclave path is the
certificate's ``CN`` (X.509 ub-common-name, 64 characters, which cryptography enforces) and a
directory; node names, namespaces and topic names by rmw's limits (``RMW_NODE_NAME_MAX_NAME_LENGTH``,
``RMW_NAMESPACE_MAX_LENGTH``, ``RMW_TOPIC_MAX_NAME_LENGTH``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cobot_security.errors import InvalidNameError

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WILD_TOKEN = re.compile(r"[A-Za-z0-9_*?]+")

#: snake_case identifiers in catalogs and plans (control, attestation, playbook and role ids).
_SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")

#: Longest enclave path: it is the certificate's CN, and X.509's ub-common-name is 64 characters.
MAX_ENCLAVE_PATH_LENGTH = 64
#: Longest node base name rmw accepts (RMW_NODE_NAME_MAX_NAME_LENGTH).
MAX_NODE_NAME_LENGTH = 255
#: Longest fully qualified topic or service name rmw accepts (RMW_TOPIC_MAX_NAME_LENGTH = 255 - 8).
MAX_TOPIC_NAME_LENGTH = 247
#: Longest namespace rmw accepts (RMW_NAMESPACE_MAX_LENGTH = RMW_TOPIC_MAX_NAME_LENGTH - 2).
MAX_NAMESPACE_LENGTH = MAX_TOPIC_NAME_LENGTH - 2

#: Services every rclpy node serves for its parameters (node-private names).
PARAMETER_SERVICES: tuple[str, ...] = (
    "describe_parameters",
    "get_parameter_types",
    "get_parameters",
    "get_type_description",
    "list_parameters",
    "set_parameters",
    "set_parameters_atomically",
)

#: The services and topics that make up a ROS 2 action, relative to the action's name.
ACTION_SERVICES: tuple[str, ...] = ("_action/send_goal", "_action/cancel_goal", "_action/get_result")
ACTION_TOPICS: tuple[str, ...] = ("_action/feedback", "_action/status")

#: DDS topic rmw uses to map participants to nodes (not mangled).
DISCOVERY_INFO_TOPIC = "ros_discovery_info"


@dataclass(frozen=True)
class NameContext:
    """Where a name came from, so that an error can point at the file, line and field."""

    file: str | None = None
    field: str | None = None
    line: int | None = None


def _fail(ctx: NameContext | None, expected: str, got: str) -> InvalidNameError:
    ctx = ctx or NameContext()
    return InvalidNameError(ctx.file, ctx.field, expected, repr(got), ctx.line)


def _check_tokens(tokens: list[str], wildcards: bool) -> bool:
    pattern = _WILD_TOKEN if wildcards else _TOKEN
    return all(pattern.fullmatch(t) for t in tokens)


def _too_long(ctx: NameContext | None, expected: str, name: str) -> InvalidNameError:
    ctx = ctx or NameContext()
    return InvalidNameError(ctx.file, ctx.field, expected, f"{name[:40]!r}... ({len(name)} characters)", ctx.line)


def _check_length(name: str, limit: int, what: str, ctx: NameContext | None) -> None:
    if len(name) > limit:
        raise _too_long(ctx, f"{what} of at most {limit} characters", name)


def validate_enclave_path(path: str, ctx: NameContext | None = None) -> str:
    """Return ``path`` if it is a safe absolute enclave name such as ``/cell/arm_driver``.

    :raises InvalidNameError: relative, root-only, containing ``..``/empty tokens or other characters.
    """
    expected = "an absolute enclave name like /cell/arm_driver (letters, digits, '_', single '/')"
    if not isinstance(path, str) or not path.startswith("/") or path == "/" or path.endswith("/"):
        raise _fail(ctx, expected, str(path))
    _check_length(path, MAX_ENCLAVE_PATH_LENGTH, "an enclave path (the certificate CN)", ctx)
    tokens = path[1:].split("/")
    if ".." in tokens or not _check_tokens(tokens, wildcards=False):
        raise _fail(ctx, expected, path)
    return path


def validate_node_name(name: str, ctx: NameContext | None = None) -> str:
    """Return ``name`` if it is a valid ROS node base name (one token, no slashes).

    :raises InvalidNameError: when it is not.
    """
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise _fail(ctx, "a node name of letters, digits and '_' not starting with a digit", str(name))
    _check_length(name, MAX_NODE_NAME_LENGTH, "a node name", ctx)
    return name


def validate_namespace(namespace: str, ctx: NameContext | None = None) -> str:
    """Return ``namespace`` normalised (absolute, no trailing slash except for root ``/``).

    :raises InvalidNameError: when it is not a valid absolute ROS namespace.
    """
    expected = "an absolute namespace like / or /cell"
    if not isinstance(namespace, str) or not namespace.startswith("/"):
        raise _fail(ctx, expected, str(namespace))
    if namespace == "/":
        return namespace
    stripped = namespace.rstrip("/")
    if not _check_tokens(stripped[1:].split("/"), wildcards=False):
        raise _fail(ctx, expected, namespace)
    _check_length(stripped, MAX_NAMESPACE_LENGTH, "a namespace", ctx)
    return stripped


def validate_ros_name(name: str, ctx: NameContext | None = None, wildcards: bool = True) -> str:
    """Return ``name`` if it is a valid topic/service/action name (relative, ``~/`` or absolute).

    :raises InvalidNameError: on empty tokens, ``..`` or characters ROS does not allow.
    """
    expected = "a ROS name like joint_states, ~/status or /cell/joint_states" + (
        " ('*' wildcards allowed)" if wildcards else ""
    )
    if not isinstance(name, str) or not name or name.endswith("/"):
        raise _fail(ctx, expected, str(name))
    body = name
    if body.startswith("~/"):
        body = body[2:]
    elif body == "~":
        raise _fail(ctx, expected, name)
    body = body.lstrip("/") if body.startswith("/") and not body.startswith("//") else body
    tokens = body.split("/")
    if ".." in tokens or not _check_tokens(tokens, wildcards=wildcards):
        raise _fail(ctx, expected, name)
    _check_length(name, MAX_TOPIC_NAME_LENGTH, "a ROS name", ctx)
    return name


def validate_grant_name(name: str, node: str, namespace: str, action: bool = False,
                        ctx: NameContext | None = None) -> str:
    """Return ``name`` if it is a valid ROS name (wildcards allowed) that stays within rmw's length
    limit once resolved against node ``node`` in ``namespace`` (actions keep room for the longest
    ``/_action/...`` suffix rcl_action appends).

    :raises InvalidNameError: when the name is invalid or resolves to too long a name.
    """
    validate_ros_name(name, ctx, wildcards=True)
    reserve = max(len("/" + suffix) for suffix in ACTION_SERVICES + ACTION_TOPICS) if action else 0
    resolved = resolve_name(name, node, namespace)
    limit = MAX_TOPIC_NAME_LENGTH - reserve
    if len(resolved) > limit:
        raise _too_long(ctx, f"a name of at most {limit} characters once resolved"
                        + (" (an action's /_action/... topics need the rest)" if action else ""), resolved)
    return name


def resolve_name(name: str, node: str, namespace: str) -> str:
    """Expand a relative or ``~/`` name against the node's namespace, as rcl does."""
    if name.startswith("/"):
        return name
    ns = "" if namespace == "/" else namespace
    if name.startswith("~/"):
        return f"{ns}/{node}/{name[2:]}"
    return f"{ns}/{name}"


def is_snake_case(value: str) -> bool:
    """Whether ``value`` is, whole, a snake_case identifier like ``per_node_identity``."""
    return _SNAKE_CASE.fullmatch(value) is not None


def has_wildcard(name: str) -> bool:
    """Whether a name uses fnmatch wildcards, which grant more than one concrete name."""
    return "*" in name or "?" in name


def mangle_topic(fqn: str) -> str:
    """DDS topic name of a ROS topic (``/a/b`` → ``rt/a/b``)."""
    return "rt" + fqn


def mangle_request(fqn: str) -> str:
    """DDS topic name of a service's request channel (``/a/s`` → ``rq/a/sRequest``)."""
    return "rq" + fqn + "Request"


def mangle_reply(fqn: str) -> str:
    """DDS topic name of a service's reply channel (``/a/s`` → ``rr/a/sReply``)."""
    return "rr" + fqn + "Reply"


_HOST = re.compile(r"[a-z][a-z0-9_]{0,62}")


def validate_host_name(name: str, ctx: NameContext | None = None) -> str:
    """Return ``name`` if it is a host name of the policy (``cell_pc``): it becomes a ROS topic token.

    The renewal answers go to ``/cobot_security/ca/responses/<host>``, so a host name is one ROS
    name token in lower case (as in ``policies/network.yaml``).

    :raises InvalidNameError: when it is not.
    """
    if not isinstance(name, str) or not _HOST.fullmatch(name):
        raise _fail(ctx, "a host name of lower-case letters, digits and '_' starting with a letter "
                         "(at most 63 characters)", str(name))
    return name
