"""The record of the last proof (``cobot-security verify``) per middleware run against a keystore.

Health reads it to say whether enforcement was proven recently on each middleware the cell runs;
only the outcome and counts are kept (``.cobot_security/last_verify.json``), never key material.
Version 2 keeps one entry per middleware under ``middlewares``; a version 1 record (one run,
before there was a choice) is read as a Cyclone DDS proof.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import KeystoreError
from cobot_security.json_input import parse_json
from cobot_security.keystore.layout import KeystoreLayout

EVIDENCE_VERSION = 2
LAST_VERIFY = "last_verify.json"
#: What a version 1 record proved: verify ran Cyclone DDS only.
V1_MIDDLEWARE = "cyclonedds"
_FIELDS = "(JSON with passed, checks, failures, domain_id, verified_at per middleware)"


@dataclass(frozen=True)
class VerifyRecord:
    """Outcome of one verification run: when, on which domain and middleware, how many checks and failures."""

    passed: bool
    checks: int
    failures: int
    domain_id: int
    verified_at: _dt.datetime
    middleware: str = V1_MIDDLEWARE


def _entry(document: object, middleware: str) -> VerifyRecord:
    if not isinstance(document, dict):
        raise TypeError(middleware)
    verified_at = _dt.datetime.fromisoformat(document["verified_at"])
    if verified_at.tzinfo is None:
        verified_at = verified_at.replace(tzinfo=_dt.timezone.utc)
    return VerifyRecord(passed=document["passed"] is True, checks=int(document["checks"]),
                        failures=int(document["failures"]), domain_id=int(document["domain_id"]),
                        verified_at=verified_at, middleware=middleware)


def read_verify_results(layout: KeystoreLayout) -> dict[str, VerifyRecord]:
    """The last recorded verification of each middleware (empty when there is none).

    :raises KeystoreError: the record exists but is unreadable or malformed.
    """
    path = layout.last_verify
    if not path.exists():
        return {}
    try:
        document = parse_json(path.read_bytes())
        if document.get("version") == 1:
            return {V1_MIDDLEWARE: _entry(document, V1_MIDDLEWARE)}
        return {str(name): _entry(entry, str(name)) for name, entry in document["middlewares"].items()}
    except OSError as exc:
        raise KeystoreError(path, f"cannot read the verification record: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KeystoreError(path, f"expected a verification record {_FIELDS}") from None


def read_verify_result(layout: KeystoreLayout) -> VerifyRecord | None:
    """The most recent verification on any middleware, or None when there is none.

    :raises KeystoreError: the record exists but is unreadable or malformed.
    """
    records = read_verify_results(layout)
    return max(records.values(), key=lambda r: r.verified_at) if records else None


def record_verify_result(
    layout: KeystoreLayout, *, passed: bool, checks: int, failures: int, domain_id: int, now: _dt.datetime,
    middleware: str = V1_MIDDLEWARE,
) -> None:
    """Replace the record of the last verification on ``middleware``, keeping the others (atomic JSON).

    An unreadable previous record is replaced rather than kept (the new run is the evidence now).

    :raises KeystoreError: the record cannot be written.
    """
    try:
        previous = read_verify_results(layout)
    except KeystoreError:
        previous = {}
    entries = {name: {"passed": r.passed, "checks": r.checks, "failures": r.failures, "domain_id": r.domain_id,
                      "verified_at": iso_utc(r.verified_at)} for name, r in previous.items()}
    entries[middleware] = {"passed": bool(passed), "checks": int(checks), "failures": int(failures),
                           "domain_id": int(domain_id), "verified_at": iso_utc(now)}
    document = {"version": EVIDENCE_VERSION, "middlewares": dict(sorted(entries.items()))}
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    try:
        atomic.make_private_dir(layout.meta_dir)
        atomic.write_bytes_atomic(layout.last_verify, data, 0o644)
    except OSError as exc:
        raise KeystoreError(exc.filename or layout.meta_dir,
                            f"cannot record the verification result: {exc.strerror or exc}") from exc
