"""Signed-off human statements (``policies/attestations.yaml``, ``version: 1``) that controls require.

Some requirements cannot be measured by a probe (USB ports locked, an incident-response drill held),
so a named person attests them with a date, an expiry and a pointer to the evidence.  An attestation
is valid from ``date`` 00:00 UTC until ``expires`` 00:00 UTC (the expiry day is the first day it no
longer counts).  The schema is documented in ``docs/posture.md``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import Node

from cobot_security.names import is_snake_case
from cobot_security.yaml_source import (
    YamlContext,
    line_of,
    read_date,
    read_document,
    read_mapping,
    read_string,
    read_unique_items,
    read_yaml_file,
    require_key,
)

__all__ = ["ATTESTATIONS_VERSION", "Attestation", "load_attestations", "load_attestations_text"]

#: The only attestations schema version this loader understands.
ATTESTATIONS_VERSION = 1

_TOP_KEYS = ("version", "attestations")
_ENTRY_KEYS = ("id", "statement", "attested_by", "date", "expires", "evidence")


@dataclass(frozen=True)
class Attestation:
    """One statement, who attested it, when, until when, and where the evidence is kept."""

    id: str
    statement: str
    attested_by: str
    date: _dt.date
    expires: _dt.date
    evidence: str
    line: int | None = None

    @property
    def valid_from(self) -> _dt.datetime:
        """The first instant the attestation counts: ``date`` 00:00 UTC."""
        return _dt.datetime.combine(self.date, _dt.time(0, 0), tzinfo=_dt.timezone.utc)

    @property
    def expires_at(self) -> _dt.datetime:
        """The first instant the attestation no longer counts: ``expires`` 00:00 UTC."""
        return _dt.datetime.combine(self.expires, _dt.time(0, 0), tzinfo=_dt.timezone.utc)


def _entry(node: Node, ctx: YamlContext) -> Attestation:
    keys = read_mapping(node, ctx, _ENTRY_KEYS, "an attestation mapping with " + ", ".join(_ENTRY_KEYS))
    id_node = require_key(keys, "id", node, ctx)[1]
    attestation_id = read_string(id_node, ctx.child("id"), "a snake_case attestation id")
    if not is_snake_case(attestation_id):
        raise ctx.child("id").error(id_node, "a snake_case attestation id (a-z, 0-9, single underscores)",
                                    repr(attestation_id))
    texts = {
        name: read_string(require_key(keys, name, node, ctx)[1], ctx.child(name),
                          f"a non-empty {name.replace('_', ' ')}")
        for name in ("statement", "attested_by", "evidence")
    }
    date = read_date(require_key(keys, "date", node, ctx)[1], ctx.child("date"))
    expires_node = require_key(keys, "expires", node, ctx)[1]
    expires = read_date(expires_node, ctx.child("expires"))
    if expires <= date:
        raise ctx.child("expires").error(expires_node, f"a date after the attestation date {date.isoformat()}",
                                         expires.isoformat())
    return Attestation(
        id=attestation_id,
        statement=texts["statement"].strip(),
        attested_by=texts["attested_by"],
        date=date,
        expires=expires,
        evidence=texts["evidence"],
        line=line_of(node),
    )


def load_attestations_text(text: str, source: str) -> tuple[Attestation, ...]:
    """Parse and validate attestations YAML ``text``; ``source`` names it in errors.

    An empty ``attestations: []`` is valid: every control requiring one then fails.

    :raises InputError: on YAML syntax errors and anything the version 1 schema does not allow.
    """
    document = read_document(text, source, _TOP_KEYS, "an attestations mapping with version and attestations",
                             ATTESTATIONS_VERSION)
    root, keys, ctx = document.root, document.keys, document.ctx
    return tuple(read_unique_items(require_key(keys, "attestations", root, ctx)[1], ctx.child("attestations"),
                                   _entry, "attestation"))


def load_attestations(path: Path | str) -> tuple[Attestation, ...]:
    """Read and validate the attestations file at ``path`` (UTF-8 YAML, schema version 1).

    :raises InputError: when the file cannot be read or is not a valid attestations file.
    """
    return load_attestations_text(read_yaml_file(path, "attestations file"), str(path))
