"""A validated policy as plain JSON data, and the key that ties it to the bytes it was read from.

Reading and validating a policy of a few hundred enclaves costs a command more than issuing an
enclave does (PyYAML's import, composing every node, checking every name).  A command that was
given the very same policy bytes before, by the very same loader, can rebuild the validated
:class:`~cobot_security.policy.model.WorkcellPolicy` from this data instead: the keystore keeps it
signed by its permissions CA (:mod:`cobot_security.keystore.policy_snapshot`).

:func:`snapshot_key` covers the policy bytes, this data format, the package version and the size
and modification time of every module of the loader, so an edited or upgraded loader never serves
a policy it would now judge differently.  :func:`policy_from_data` checks every type and raises
``ValueError`` on anything else: the caller then reads the file again.  Pure: no YAML, no I/O but
the loader's ``stat``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from pathlib import Path
from typing import Any

from cobot_security import __version__
from cobot_security.policy.model import (
    Enclave,
    GovernanceOptions,
    Host,
    Lifetimes,
    NodeGrants,
    Protection,
    WorkcellPolicy,
)

SNAPSHOT_FORMAT = "cobot_security.policy_snapshot/1"

#: The fields each model class is written with; a test fails when the model gains one.
GOVERNANCE_FIELDS = ("allow_unauthenticated_participants", "enable_join_access_control", "rtps_protection",
                     "discovery_protection", "liveliness_protection", "metadata_protection", "data_protection",
                     "enable_read_access_control", "enable_write_access_control")
LIFETIME_FIELDS = ("ca_duration", "enclave_duration", "renew_before", "crl_next_update")
NODE_LIST_FIELDS = ("publish", "subscribe", "services_serve", "services_call", "actions_serve", "actions_call")

_PACKAGE = Path(__file__).resolve().parent.parent
#: What the policy loader is made of, besides the modules of this directory.
_LOADER_MODULES = ("names.py", "yaml_source.py", "yaml_compose.py", "duration.py", "input_file.py", "errors.py")


def _loader_fingerprint() -> str:
    parts = []
    files = sorted(p.name for p in (_PACKAGE / "policy").iterdir() if p.suffix == ".py")
    for path in [_PACKAGE / "policy" / name for name in files] + [_PACKAGE / name for name in _LOADER_MODULES]:
        try:
            st = os.stat(path)
        except OSError:
            parts.append(f"{path.name}:absent")
            continue
        parts.append(f"{path.parent.name}/{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def snapshot_key(data: bytes) -> str:
    """The key of the policy file whose bytes are ``data``, as read by this loader (hex SHA-256)."""
    digest = hashlib.sha256()
    for part in (SNAPSHOT_FORMAT, __version__, _loader_fingerprint()):
        digest.update(part.encode("utf-8") + b"\0")
    digest.update(data)
    return digest.hexdigest()


def _delta(value: _dt.timedelta) -> list[int]:
    return [value.days, value.seconds, value.microseconds]


def policy_to_data(policy: WorkcellPolicy) -> dict[str, Any]:
    """``policy`` as JSON-compatible data (everything but ``source``, which names where it was read)."""
    governance = {name: getattr(policy.governance, name) for name in GOVERNANCE_FIELDS}
    return {
        "version": policy.version,
        "name": policy.name,
        "domain_ids": list(policy.domain_ids),
        "governance": {k: v.value if isinstance(v, Protection) else v for k, v in governance.items()},
        "lifetimes": {name: _delta(getattr(policy.lifetimes, name)) for name in LIFETIME_FIELDS},
        "middlewares": list(policy.middlewares),
        "hosts": [[h.name, h.role, h.description, h.line] for h in policy.hosts],
        "enclaves": [
            [e.path, e.builtins, e.line, list(e.hosts),
             [[n.name, n.namespace, n.line, *(list(getattr(n, f)) for f in NODE_LIST_FIELDS)] for n in e.nodes]]
            for e in policy.enclaves
        ],
    }


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"policy snapshot: expected {what}")


def _str(value: object, what: str) -> str:
    _check(isinstance(value, str), f"a string for {what}")
    return value  # type: ignore[return-value]


def _int(value: object, what: str) -> int:
    _check(isinstance(value, int) and not isinstance(value, bool), f"an integer for {what}")
    return value  # type: ignore[return-value]


def _line(value: object) -> int | None:
    return None if value is None else _int(value, "a line")


def _strings(value: object, what: str) -> tuple[str, ...]:
    _check(isinstance(value, list) and all(isinstance(v, str) for v in value), f"a list of strings for {what}")
    return tuple(value)  # type: ignore[arg-type]


def _items(value: object, width: int, what: str) -> list[list[Any]]:
    _check(isinstance(value, list) and all(isinstance(v, list) and len(v) == width for v in value),
           f"a list of {width}-item lists for {what}")
    return value  # type: ignore[return-value]


def _mapping(value: object, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    _check(isinstance(value, dict) and tuple(sorted(value)) == tuple(sorted(keys)), f"the keys of {what}")
    return value  # type: ignore[return-value]


def _governance(value: object) -> GovernanceOptions:
    data = _mapping(value, GOVERNANCE_FIELDS, "governance")
    fields: dict[str, Any] = {}
    for name in GOVERNANCE_FIELDS:
        item = data[name]
        if name.endswith("_protection"):
            _check(isinstance(item, str) and item in {p.value for p in Protection}, f"a protection kind for {name}")
            fields[name] = Protection(item)
        else:
            _check(isinstance(item, bool), f"a boolean for {name}")
            fields[name] = item
    return GovernanceOptions(**fields)


def _lifetimes(value: object) -> Lifetimes:
    data = _mapping(value, LIFETIME_FIELDS, "lifetimes")
    fields = {}
    for name in LIFETIME_FIELDS:
        parts = data[name]
        _check(isinstance(parts, list) and len(parts) == 3, f"[days, seconds, microseconds] for {name}")
        days, seconds, micro = (_int(p, name) for p in parts)
        try:
            fields[name] = _dt.timedelta(days=days, seconds=seconds, microseconds=micro)
        except OverflowError:
            raise ValueError(f"policy snapshot: expected a duration for {name}") from None
    return Lifetimes(**fields)


def _node(item: list[Any]) -> NodeGrants:
    lists = {f: _strings(v, f) for f, v in zip(NODE_LIST_FIELDS, item[3:])}
    return NodeGrants(name=_str(item[0], "a node name"), namespace=_str(item[1], "a namespace"),
                      line=_line(item[2]), **lists)


def _enclave(item: list[Any]) -> Enclave:
    _check(isinstance(item[1], bool), "a boolean for builtins")
    nodes = tuple(_node(n) for n in _items(item[4], 3 + len(NODE_LIST_FIELDS), "nodes"))
    return Enclave(path=_str(item[0], "an enclave path"), nodes=nodes, builtins=item[1], line=_line(item[2]),
                   hosts=_strings(item[3], "hosts"))


def policy_from_data(data: object, source: str | None) -> WorkcellPolicy:
    """The policy :func:`policy_to_data` wrote, read from ``source``.

    :raises ValueError: ``data`` is not exactly what :func:`policy_to_data` writes.
    """
    top = _mapping(data, ("version", "name", "domain_ids", "governance", "lifetimes", "middlewares", "hosts",
                          "enclaves"), "a policy snapshot")
    domain_ids = top["domain_ids"]
    _check(isinstance(domain_ids, list), "a list of domain ids")
    hosts = tuple(Host(name=_str(h[0], "a host name"), role=_str(h[1], "a host role"),
                       description=_str(h[2], "a host description"), line=_line(h[3]))
                  for h in _items(top["hosts"], 4, "hosts"))
    return WorkcellPolicy(
        version=_int(top["version"], "version"),
        name=_str(top["name"], "name"),
        domain_ids=tuple(_int(d, "a domain id") for d in domain_ids),
        governance=_governance(top["governance"]),
        lifetimes=_lifetimes(top["lifetimes"]),
        enclaves=tuple(_enclave(e) for e in _items(top["enclaves"], 5, "enclaves")),
        source=source,
        middlewares=_strings(top["middlewares"], "middlewares"),
        hosts=hosts,
    )
