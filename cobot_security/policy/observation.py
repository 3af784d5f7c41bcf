"""What an observer saw of a running ROS graph, merged over a learning window (pure, no rclpy).

The graph observer (``nodes/graph_observer.py``) turns each sample of the live graph into
:class:`NodeSample` values exactly as rclpy reports them; :class:`ObservationLog` folds them over
time.  Nodes that appear late, restart or live for one sample are all kept (the union of what was
seen).  What every rclpy node has anyway — ``/rosout``, ``/parameter_events``, its own parameter
and type-description services — is folded into ``builtins`` rather than listed, and the topics and
services that make up an action (``<action>/_action/...``) are folded into the action.  Names that
break the ROS naming rules (the graph is input from other processes) are counted and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cobot_security.errors import InvalidNameError
from cobot_security.names import (
    ACTION_SERVICES,
    ACTION_TOPICS,
    PARAMETER_SERVICES,
    resolve_name,
    validate_enclave_path,
    validate_namespace,
    validate_node_name,
    validate_ros_name,
)

#: The endpoint kinds of a node, in the order of the policy's grant fields (NodeGrants names).
ENDPOINT_FIELDS: tuple[str, ...] = (
    "publish", "subscribe", "services_serve", "services_call", "actions_serve", "actions_call",
)
_BUILTIN_PUBLISH = frozenset({"/rosout", "/parameter_events"})
_BUILTIN_SUBSCRIBE = frozenset({"/parameter_events"})
_ACTION_PART = "/_action/"


@dataclass(frozen=True)
class NodeSample:
    """One node as one graph sample reported it: absolute names, before any folding."""

    name: str
    namespace: str
    enclave: str = "/"
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    services_serve: tuple[str, ...] = ()
    services_call: tuple[str, ...] = ()
    actions_serve: tuple[str, ...] = ()
    actions_call: tuple[str, ...] = ()

    @property
    def fqn(self) -> str:
        """Fully qualified node name."""
        return resolve_name(self.name, self.name, self.namespace)


@dataclass
class ObservedNode:
    """Everything one node (by fully qualified name) was seen using during the window."""

    name: str
    namespace: str
    enclaves: list[str] = field(default_factory=list)
    endpoints: dict[str, set[str]] = field(default_factory=lambda: {f: set() for f in ENDPOINT_FIELDS})
    first_seen: float = 0.0
    last_seen: float = 0.0
    samples: int = 0

    @property
    def fqn(self) -> str:
        """Fully qualified node name."""
        return resolve_name(self.name, self.name, self.namespace)

    @property
    def enclave(self) -> str:
        """The last enclave the node reported other than the default ``/`` (``/`` when none)."""
        named = [e for e in self.enclaves if e != "/"]
        return named[-1] if named else "/"

    def count(self) -> int:
        """How many distinct endpoints (after folding) the node was seen with."""
        return sum(len(names) for names in self.endpoints.values())


def _action_base(name: str, parts: tuple[str, ...]) -> str | None:
    """``/a/x`` when ``name`` is ``/a/x/_action/<part>`` for one of ``parts``."""
    for part in parts:
        if name.endswith("/" + part) and len(name) > len(part) + 1:
            return name[: -len(part) - 1]
    return None


def fold_sample(sample: NodeSample) -> dict[str, set[str]]:
    """The sample's endpoints with builtins dropped and action parts folded into their actions."""
    own_parameters = {f"{sample.fqn}/{service}" for service in PARAMETER_SERVICES}
    result: dict[str, set[str]] = {f: set(getattr(sample, f)) for f in ENDPOINT_FIELDS}
    result["publish"] -= _BUILTIN_PUBLISH
    result["subscribe"] -= _BUILTIN_SUBSCRIBE
    result["services_serve"] -= own_parameters
    # An action is served / called as three services and two topics; any part names the action.
    for role, services, topics in (("actions_serve", "services_serve", "publish"),
                                   ("actions_call", "services_call", "subscribe")):
        for kind, parts in ((services, ACTION_SERVICES), (topics, ACTION_TOPICS)):
            for name in list(result[kind]):
                base = _action_base(name, parts)
                if base is not None:
                    result[kind].discard(name)
                    result[role].add(base)
    return result


@dataclass
class ObservationLog:
    """The merged result of every sample of a learning window; ``exclude`` holds the observer's FQN."""

    exclude: frozenset[str] = frozenset()
    nodes: dict[str, ObservedNode] = field(default_factory=dict)
    samples: int = 0
    started: float | None = None
    ended: float | None = None
    hidden_nodes: set[str] = field(default_factory=set)
    dropped: int = 0
    #: Per node, the (enclave, endpoint count) last returned by :meth:`changes`.
    reported: dict[str, tuple[str, int]] = field(default_factory=dict)

    def add_sample(self, nodes: list[NodeSample], at: float) -> None:
        """Merge one graph sample taken at monotonic time ``at``."""
        self.samples += 1
        self.started = at if self.started is None else self.started
        self.ended = at
        for sample in nodes:
            self._add_node(sample, at)

    def _add_node(self, sample: NodeSample, at: float) -> None:
        try:
            validate_node_name(sample.name)
            namespace = validate_namespace(sample.namespace)
        except InvalidNameError:
            self.dropped += 1
            return
        fqn = resolve_name(sample.name, sample.name, namespace)
        if fqn in self.exclude:
            return
        if sample.name.startswith("_"):
            # Hidden nodes (ros2cli daemon, observers): tools, not cell nodes.
            self.hidden_nodes.add(fqn)
            return
        node = self.nodes.get(fqn)
        if node is None:
            node = self.nodes[fqn] = ObservedNode(sample.name, namespace, first_seen=at)
        node.samples += 1
        node.last_seen = at
        if self._valid_enclave(sample.enclave) and (not node.enclaves or node.enclaves[-1] != sample.enclave):
            node.enclaves.append(sample.enclave)
        for kind, names in fold_sample(sample).items():
            for name in names:
                if self._valid_name(name):
                    node.endpoints[kind].add(name)

    def _valid_enclave(self, enclave: str) -> bool:
        if enclave == "/":
            return True
        try:
            validate_enclave_path(enclave)
        except InvalidNameError:
            self.dropped += 1
            return False
        return True

    def _valid_name(self, name: str) -> bool:
        try:
            validate_ros_name(name, wildcards=False)
        except InvalidNameError:
            self.dropped += 1
            return False
        if not name.startswith("/"):
            self.dropped += 1
            return False
        return True

    @property
    def duration_s(self) -> float:
        """Seconds between the first and the last sample."""
        if self.started is None or self.ended is None:
            return 0.0
        return self.ended - self.started

    def endpoint_count(self) -> int:
        """Distinct endpoints seen over all nodes (after folding)."""
        return sum(node.count() for node in self.nodes.values())

    def changes(self) -> list[str]:
        """One line per node seen for the first time, or with another enclave or more endpoints, since
        the last call: what a user watching the window (or a script waiting for a node) reads."""
        lines = []
        for fqn, node in self.nodes.items():
            state = (node.enclave, node.count())
            if self.reported.get(fqn) != state:
                verb = "now" if fqn in self.reported else "seen"
                self.reported[fqn] = state
                lines.append(f"learning: {verb} {fqn} (enclave {state[0]}, {state[1]} endpoint(s))")
        return lines

    def progress(self, elapsed_s: float, duration_s: float) -> str:
        """The one-line progress text: elapsed time and what has been seen so far."""
        return (f"learning: {elapsed_s:5.1f}/{duration_s:g} s, {self.samples} sample(s), "
                f"{len(self.nodes)} node(s), {self.endpoint_count()} endpoint(s)")
