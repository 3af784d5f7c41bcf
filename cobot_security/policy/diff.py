"""Two workcell policies → per enclave, the DDS grants a change would add and remove (pure).

Both policies are compiled with the same code the permissions documents come from
(:func:`compute_dds_grants`), so the diff is exactly what signing the new policy changes on the
wire: mangled DDS names (``rt/``, ``rq/...Request``, ``rr/...Reply``, action parts), builtins
included.  A change *widens* privilege when the new policy grants a DDS name that no grant of the
old one (wildcards matched as DDS does, with fnmatch) already covered, adds an enclave, or adds
a domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from cobot_security.names import DISCOVERY_INFO_TOPIC, PARAMETER_SERVICES
from cobot_security.policy.grants import DdsGrants, compute_dds_grants
from cobot_security.policy.model import WorkcellPolicy

ADDED = "added"
REMOVED = "removed"
DIRECTIONS: tuple[str, ...] = ("publish", "subscribe")


@dataclass(frozen=True)
class GrantChange:
    """One DDS name granted (or no longer granted) to an enclave in one direction."""

    enclave: str
    change: str
    direction: str
    dds_name: str
    widens: bool = False

    @property
    def kind(self) -> str:
        """``topic``, ``service``, ``action`` or ``builtin``, read back from the mangled name."""
        return describe_dds_name(self.dds_name)[0]

    @property
    def ros_name(self) -> str:
        """The ROS name the DDS name was mangled from."""
        return describe_dds_name(self.dds_name)[1]


@dataclass(frozen=True)
class EnclaveDiff:
    """What changes for one enclave: ``status`` is added, removed, changed or unchanged."""

    enclave: str
    status: str
    changes: tuple[GrantChange, ...]


@dataclass(frozen=True)
class PolicyDiff:
    """The whole comparison, enclaves in path order; domain ids compared too."""

    enclaves: tuple[EnclaveDiff, ...]
    domains_added: tuple[int, ...] = ()
    domains_removed: tuple[int, ...] = ()

    @property
    def changes(self) -> tuple[GrantChange, ...]:
        """Every grant change, enclave by enclave."""
        return tuple(c for e in self.enclaves for c in e.changes)

    @property
    def widens(self) -> bool:
        """Whether the new policy grants anything the old one did not."""
        return bool(self.domains_added) or any(c.widens for c in self.changes)

    @property
    def empty(self) -> bool:
        """No grant and no domain changes."""
        return not self.changes and not self.domains_added and not self.domains_removed

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view for ``--format json``."""
        return {
            "widens": self.widens,
            "domains_added": list(self.domains_added),
            "domains_removed": list(self.domains_removed),
            "enclaves": [
                {"enclave": e.enclave, "status": e.status,
                 "changes": [{"change": c.change, "direction": c.direction, "kind": c.kind,
                              "ros_name": c.ros_name, "dds_name": c.dds_name, "widens": c.widens}
                             for c in e.changes]}
                for e in self.enclaves if e.status != "unchanged"
            ],
        }


def describe_dds_name(dds_name: str) -> tuple[str, str]:
    """(kind, ROS name) of a mangled DDS topic name, e.g. ``rq/a/sRequest`` → (service, /a/s)."""
    if dds_name == DISCOVERY_INFO_TOPIC:
        return "builtin", dds_name
    body = dds_name[2:]
    if dds_name.startswith("rq") and body.endswith("Request"):
        body = body[: -len("Request")]
    elif dds_name.startswith("rr") and body.endswith("Reply"):
        body = body[: -len("Reply")]
    if "/_action/" in body:
        return "action", body.split("/_action/")[0]
    if body in ("/rosout", "/parameter_events") or body.rsplit("/", 1)[-1] in PARAMETER_SERVICES:
        return "builtin", body
    return ("topic" if dds_name.startswith("rt") else "service"), body


def _covered(name: str, granted: tuple[str, ...]) -> bool:
    return name in granted or any(fnmatchcase(name, pattern) for pattern in granted)


def _enclave_changes(path: str, old: DdsGrants | None, new: DdsGrants | None) -> tuple[GrantChange, ...]:
    changes = []
    for direction in DIRECTIONS:
        before = getattr(old, direction) if old is not None else ()
        after = getattr(new, direction) if new is not None else ()
        for name in sorted(set(after) - set(before)):
            changes.append(GrantChange(path, ADDED, direction, name, widens=not _covered(name, before)))
        for name in sorted(set(before) - set(after)):
            changes.append(GrantChange(path, REMOVED, direction, name))
    return tuple(changes)


def diff_policies(old: WorkcellPolicy, new: WorkcellPolicy) -> PolicyDiff:
    """Per enclave (by path), the compiled DDS grants ``new`` adds and removes relative to ``old``."""
    before = {e.path: compute_dds_grants(e) for e in old.enclaves}
    after = {e.path: compute_dds_grants(e) for e in new.enclaves}
    enclaves = []
    for path in sorted(set(before) | set(after)):
        changes = _enclave_changes(path, before.get(path), after.get(path))
        if path not in before:
            status = "added"
        elif path not in after:
            status = "removed"
        else:
            status = "changed" if changes else "unchanged"
        enclaves.append(EnclaveDiff(path, status, changes))
    return PolicyDiff(
        enclaves=tuple(enclaves),
        domains_added=tuple(sorted(set(new.domain_ids) - set(old.domain_ids))),
        domains_removed=tuple(sorted(set(old.domain_ids) - set(new.domain_ids))),
    )
