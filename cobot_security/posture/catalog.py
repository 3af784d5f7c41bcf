"""The posture controls catalog (``policies/posture_controls.yaml``, ``version: 1``) as typed values.

A control names the health checks and the signed-off attestations that together are the evidence
for one security requirement (IEC 62443 references).  Loading is as strict as the policy: unknown
keys, duplicate keys or ids, unknown check names and a control with no evidence at all are errors,
because a control that can never fail is worse than no control (fail closed).  The schema is
documented in ``docs/posture.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from yaml.nodes import Node

from cobot_security.checks import ALL_CHECKS
from cobot_security.names import is_snake_case
from cobot_security.yaml_source import (
    YamlContext,
    line_of,
    read_choice,
    read_document,
    read_mapping,
    read_sequence,
    read_string,
    read_unique_items,
    read_yaml_file,
    require_key,
)

__all__ = ["CATALOG_VERSION", "Control", "ControlsCatalog", "Priority", "load_controls", "load_controls_text"]

#: The only catalog schema version this loader understands.
CATALOG_VERSION = 1

_TOP_KEYS = ("version", "controls")
_CONTROL_KEYS = ("id", "title", "priority", "references", "checks", "attestations", "description")


class Priority(Enum):
    """How much a control weighs in the score and which ``--fail-on`` thresholds it trips."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def weight(self) -> int:
        """Score weight: critical 4, high 3, medium 2, low 1."""
        return _WEIGHTS[self]

    def at_least(self, other: Priority) -> bool:
        """True when this priority is ``other`` or more important."""
        return self.weight >= other.weight


_WEIGHTS = {Priority.CRITICAL: 4, Priority.HIGH: 3, Priority.MEDIUM: 2, Priority.LOW: 1}


@dataclass(frozen=True)
class Control:
    """One requirement: the checks and attestations that are its evidence, and what it maps to."""

    id: str
    title: str
    priority: Priority
    references: tuple[str, ...]
    checks: tuple[str, ...] = ()
    attestations: tuple[str, ...] = ()
    description: str = ""
    line: int | None = None

    @property
    def status_name(self) -> str:
        """Status name on the wire: ``cobot_security/posture/<control_id>``."""
        return f"cobot_security/posture/{self.id}"


@dataclass(frozen=True)
class ControlsCatalog:
    """The loaded catalog: schema version, the controls in file order, and where it came from."""

    version: int
    controls: tuple[Control, ...]
    source: str = ""

    def get(self, control_id: str) -> Control | None:
        """The control with ``control_id``, or None."""
        for control in self.controls:
            if control.id == control_id:
                return control
        return None


def _snake_id(node: Node, ctx: YamlContext, what: str) -> str:
    value = read_string(node, ctx, f"a snake_case {what}")
    if not is_snake_case(value):
        raise ctx.error(node, f"a snake_case {what} (a-z, 0-9, single underscores)", repr(value))
    return value


def _string_list(node: Node, ctx: YamlContext, what: str) -> tuple[str, ...]:
    items = read_sequence(node, ctx, f"a list of {what}")
    values: list[str] = []
    for index, item in enumerate(items):
        value = read_string(item, ctx.item(index), f"a non-empty {what[:-1] if what.endswith('s') else what}")
        if value in values:
            raise ctx.item(index).error(item, f"each of the {what} once", f"{value!r} again")
        values.append(value)
    return tuple(values)


def _id_list(node: Node, ctx: YamlContext, what: str) -> tuple[str, ...]:
    items = read_sequence(node, ctx, f"a list of {what}")
    values: list[str] = []
    for index, item in enumerate(items):
        value = _snake_id(item, ctx.item(index), what[:-1])
        if value in values:
            raise ctx.item(index).error(item, f"each of the {what} once", f"{value!r} again")
        values.append(value)
    return tuple(values)


def _control(node: Node, ctx: YamlContext) -> Control:
    keys = read_mapping(node, ctx, _CONTROL_KEYS, "a control mapping with id, title, priority, references")
    control_id = _snake_id(require_key(keys, "id", node, ctx)[1], ctx.child("id"), "control id")
    title = read_string(require_key(keys, "title", node, ctx)[1], ctx.child("title"), "a non-empty title")
    priority = read_choice(require_key(keys, "priority", node, ctx)[1], ctx.child("priority"), Priority)
    references_node = require_key(keys, "references", node, ctx)[1]
    references = _string_list(references_node, ctx.child("references"), "references")
    if not references:
        raise ctx.child("references").error(references_node, "at least one standard reference", "an empty list")
    checks: tuple[str, ...] = ()
    if "checks" in keys:
        cctx = ctx.child("checks")
        checks = _id_list(keys["checks"][1], cctx, "check names")
        for index, (check, item) in enumerate(zip(checks, keys["checks"][1].value)):
            if check not in ALL_CHECKS:
                raise cctx.item(index).error(item, "a health check name (" + ", ".join(ALL_CHECKS) + ")", repr(check))
    attestations: tuple[str, ...] = ()
    if "attestations" in keys:
        attestations = _id_list(keys["attestations"][1], ctx.child("attestations"), "attestation ids")
    if not checks and not attestations:
        # Fail closed: a control with no evidence could only ever pass or be meaningless.
        raise ctx.error(node, f"control {control_id!r} to list at least one check or attestation", "neither")
    description = ""
    if "description" in keys:
        description = read_string(keys["description"][1], ctx.child("description"), "a non-empty description").strip()
    return Control(
        id=control_id,
        title=title,
        priority=priority,
        references=references,
        checks=checks,
        attestations=attestations,
        description=description,
        line=line_of(node),
    )


def load_controls_text(text: str, source: str) -> ControlsCatalog:
    """Parse and validate catalog YAML ``text``; ``source`` names it in errors.

    :raises InputError: on YAML syntax errors and anything the version 1 schema does not allow.
    """
    document = read_document(text, source, _TOP_KEYS, "a catalog mapping with version and controls", CATALOG_VERSION)
    root, keys, ctx, version = document.root, document.keys, document.ctx, document.version
    # Fail closed: an empty catalog would score nothing and hide everything.
    controls = read_unique_items(require_key(keys, "controls", root, ctx)[1], ctx.child("controls"), _control,
                                 "control", non_empty=True)
    return ControlsCatalog(version=version, controls=tuple(controls), source=source)


def load_controls(path: Path | str) -> ControlsCatalog:
    """Read and validate the controls catalog at ``path`` (UTF-8 YAML, schema version 1).

    :raises InputError: when the file cannot be read or is not a valid catalog.
    """
    return load_controls_text(read_yaml_file(path, "controls catalog"), str(path))
