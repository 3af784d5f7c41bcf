"""The ``certificates:`` section of the policy: lifetimes, each bounded, and the rules between them.

One check for every reader of the policy (``policy validate``, ``policy lint``, ``init``, the
keystore manager): a lifetime that would let the cell die a second after ``init``, or overflow a
date, is refused with its bounds in the message.  docs/policy.md states the same rule.
"""

from __future__ import annotations

import datetime as _dt

from yaml.nodes import Node

from cobot_security.policy.model import Lifetimes
from cobot_security.yaml_source import MAX_DURATION, YamlContext, format_duration, read_duration, read_mapping

__all__ = ["lifetime_conflicts", "read_lifetimes"]

_CERT_KEYS = ("ca", "enclave", "crl")
_HOUR = _dt.timedelta(hours=1)
_DAY = _dt.timedelta(days=1)
#: section → key → (Lifetimes field, minimum, maximum); docs/policy.md states the same rule.
#: An enclave certificate lives at least an hour; it is renewed at least 15 minutes (fifteen
#: keystore_manager checks at the default period) before it ends; a CRL is valid at least an hour
#: (the manager re-issues it in the last third, 20 minutes) and at most 90 days (an older CRL an
#: attacker replays un-revokes nothing newer than that); a CA lives 1 day to 100 years.
_LIFETIMES: dict[str, dict[str, tuple[str, _dt.timedelta, _dt.timedelta]]] = {
    "ca": {"duration": ("ca_duration", _DAY, MAX_DURATION)},
    "enclave": {
        "duration": ("enclave_duration", _HOUR, MAX_DURATION),
        "renew_before": ("renew_before", _dt.timedelta(minutes=15), MAX_DURATION),
    },
    "crl": {"next_update": ("crl_next_update", _HOUR, _dt.timedelta(days=90))},
}


def _lifetime_nodes(node: Node, ctx: YamlContext) -> dict[str, tuple[Node, Node]]:
    """``section.key`` → (key node, value node) of every lifetime the file states."""
    found: dict[str, tuple[Node, Node]] = {}
    for section, (section_key, section_node) in read_mapping(node, ctx, _CERT_KEYS).items():
        found[section] = (section_key, section_node)
        for key, pair in read_mapping(section_node, ctx.child(section), tuple(_LIFETIMES[section])).items():
            found[f"{section}.{key}"] = pair
    return found


def read_lifetimes(node: Node, ctx: YamlContext) -> Lifetimes:
    """Read ``certificates:`` with the bounds of :data:`_LIFETIMES`, then the rules between them.

    :raises InputError: (as the context's error type) at the offending lifetime, naming its bounds.
    """
    found = _lifetime_nodes(node, ctx)
    values: dict[str, _dt.timedelta] = {}
    for section, fields in _LIFETIMES.items():
        for key, (attribute, minimum, maximum) in fields.items():
            if f"{section}.{key}" in found:
                values[attribute] = read_duration(found[f"{section}.{key}"][1], ctx.child(f"{section}.{key}"),
                                                  minimum, maximum)
    lifetimes = Lifetimes(**values)
    for involved, expected, got in lifetime_conflicts(lifetimes):
        # Point at the first of the clashing lifetimes the file states (else at its section).
        stated = [f for f in involved if f in found] or [f.split(".")[0] for f in involved if f.split(".")[0] in found]
        where = found[stated[0]][0] if stated else node
        raise ctx.child(involved[0]).error(where, expected, got)
    return lifetimes


def lifetime_conflicts(lifetimes: Lifetimes) -> list[tuple[tuple[str, ...], str, str]]:
    """The rules between lifetimes that ``lifetimes`` breaks: (the ``section.key`` fields involved,
    the field named first; expected; got).

    The bounds of each lifetime alone are in :data:`_LIFETIMES`; together: ``renew_before`` is
    shorter than the enclave duration (else every certificate is due at birth), and an enclave
    lives no longer than its CA (the keystore would cut it short silently).
    """
    conflicts: list[tuple[tuple[str, ...], str, str]] = []
    if lifetimes.renew_before >= lifetimes.enclave_duration:
        conflicts.append((("enclave.renew_before", "enclave.duration"),
                          f"a renew_before shorter than the enclave duration "
                          f"{format_duration(lifetimes.enclave_duration)}",
                          format_duration(lifetimes.renew_before)))
    if lifetimes.enclave_duration > lifetimes.ca_duration:
        conflicts.append((("enclave.duration", "ca.duration"),
                          "an enclave duration no longer than the CA duration "
                          f"{format_duration(lifetimes.ca_duration)}",
                          format_duration(lifetimes.enclave_duration)))
    return conflicts
