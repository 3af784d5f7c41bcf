"""The workcell policy as frozen dataclasses: what each enclave may publish, subscribe, serve, call.

This is the desired state the keystore is built from.  It knows nothing of YAML, XML or DDS; the
loader builds it, the compilers read it.  ``line`` fields remember where an item was defined so
that later checks (lint, compile) can still point at the source file.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, replace
from enum import Enum

from cobot_security.names import resolve_name


class Middleware(str, Enum):
    """The ROS 2 middlewares (rmw implementations) a cell can run, by the names ``verify`` uses."""

    CYCLONEDDS = "cyclonedds"
    FASTDDS = "fastdds"
    ZENOH = "zenoh"


CYCLONEDDS = Middleware.CYCLONEDDS.value
FASTDDS = Middleware.FASTDDS.value
ZENOH = Middleware.ZENOH.value
MIDDLEWARES: tuple[str, ...] = tuple(m.value for m in Middleware)


class Protection(str, Enum):
    """DDS Security protection kinds, as written in governance XML."""

    NONE = "NONE"
    SIGN = "SIGN"
    ENCRYPT = "ENCRYPT"


@dataclass(frozen=True)
class GovernanceOptions:
    """Domain-wide DDS Security governance; secure by default (ENCRYPT everywhere, no unauthenticated)."""

    allow_unauthenticated_participants: bool = False
    enable_join_access_control: bool = True
    rtps_protection: Protection = Protection.ENCRYPT
    discovery_protection: Protection = Protection.ENCRYPT
    liveliness_protection: Protection = Protection.ENCRYPT
    metadata_protection: Protection = Protection.ENCRYPT
    data_protection: Protection = Protection.ENCRYPT
    enable_read_access_control: bool = True
    enable_write_access_control: bool = True


@dataclass(frozen=True)
class Lifetimes:
    """Certificate and CRL lifetimes (cert-manager style ``duration`` / ``renew_before``)."""

    ca_duration: _dt.timedelta = _dt.timedelta(days=3650)
    enclave_duration: _dt.timedelta = _dt.timedelta(days=90)
    renew_before: _dt.timedelta = _dt.timedelta(days=30)
    crl_next_update: _dt.timedelta = _dt.timedelta(days=7)


@dataclass(frozen=True)
class NodeGrants:
    """One ROS node of an enclave and the ROS-level names it may use (as written in the policy)."""

    name: str
    namespace: str = "/"
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    services_serve: tuple[str, ...] = ()
    services_call: tuple[str, ...] = ()
    actions_serve: tuple[str, ...] = ()
    actions_call: tuple[str, ...] = ()
    line: int | None = field(default=None, compare=False)

    @property
    def fqn(self) -> str:
        """Fully qualified node name, e.g. ``/cell/arm_driver``."""
        return resolve_name(self.name, self.name, self.namespace)

    def resolve(self, name: str) -> str:
        """Resolve one of this node's relative or ``~/`` names to an absolute ROS name."""
        return resolve_name(name, self.name, self.namespace)


@dataclass(frozen=True)
class Enclave:
    """An SROS2 enclave: one identity (certificate) and one permissions grant, usually one node.

    ``hosts`` names the machines that run it (empty in a policy without ``hosts:``: one machine).
    """

    path: str
    nodes: tuple[NodeGrants, ...]
    builtins: bool = True
    line: int | None = field(default=None, compare=False)
    hosts: tuple[str, ...] = ()


#: Host roles: the one machine holding the CA keys, and the machines running enclaves.
HOST_ROLES: tuple[str, ...] = ("authority", "member")


@dataclass(frozen=True)
class Host:
    """A machine of the cell: ``authority`` holds the CA keys, a ``member`` runs enclaves only."""

    name: str
    role: str = "member"
    description: str = ""
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class WorkcellPolicy:
    """The whole cell: domains, governance, lifetimes and every enclave."""

    version: int
    name: str
    domain_ids: tuple[int, ...]
    governance: GovernanceOptions
    lifetimes: Lifetimes
    enclaves: tuple[Enclave, ...]
    source: str | None = field(default=None, compare=False)
    #: The middlewares the cell runs: ``verify`` must prove each of them for the posture to pass.
    middlewares: tuple[str, ...] = (CYCLONEDDS,)
    hosts: tuple[Host, ...] = ()

    def enclave(self, path: str) -> Enclave | None:
        """The enclave with this path, or None when the policy does not name it."""
        for enclave in self.enclaves:
            if enclave.path == path:
                return enclave
        return None

    def host(self, name: str) -> Host | None:
        """The host called ``name``, or None when the policy does not name it."""
        for host in self.hosts:
            if host.name == name:
                return host
        return None

    def enclaves_on(self, host: str) -> tuple[Enclave, ...]:
        """The enclaves assigned to ``host``, in policy order (empty for a host the policy does not name)."""
        return tuple(enclave for enclave in self.enclaves if host in enclave.hosts)

    def hosts_of(self, path: str) -> tuple[str, ...]:
        """The hosts that run enclave ``path`` (empty when unknown or the policy names no hosts)."""
        enclave = self.enclave(path)
        return enclave.hosts if enclave is not None else ()

    def for_host(self, host: str) -> WorkcellPolicy:
        """This policy with only ``host``'s enclaves: what a host keystore must hold."""
        return replace(self, enclaves=self.enclaves_on(host))

    def on_one_machine(self) -> WorkcellPolicy:
        """This policy with its hosts removed: the whole cell run on one machine (the demo, tests)."""
        return replace(self, hosts=(), enclaves=tuple(replace(e, hosts=()) for e in self.enclaves))
