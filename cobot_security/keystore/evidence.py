"""The record of the last DDS Security proof (``cobot-security verify``) run against a keystore.

Health reads it to say whether enforcement was proven recently; only the outcome and counts are
kept (``.cobot_security/last_verify.json``), never key material.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import KeystoreError
from cobot_security.keystore.layout import KeystoreLayout

EVIDENCE_VERSION = 1
LAST_VERIFY = "last_verify.json"


@dataclass(frozen=True)
class VerifyRecord:
    """Outcome of one verification run: when, on which domain, how many checks and failures."""

    passed: bool
    checks: int
    failures: int
    domain_id: int
    verified_at: _dt.datetime


def record_verify_result(
    layout: KeystoreLayout, *, passed: bool, checks: int, failures: int, domain_id: int, now: _dt.datetime
) -> None:
    """Replace the record of the last verification (atomic JSON).

    :raises KeystoreError: the record cannot be written.
    """
    document = {
        "version": EVIDENCE_VERSION,
        "passed": bool(passed),
        "checks": int(checks),
        "failures": int(failures),
        "domain_id": int(domain_id),
        "verified_at": iso_utc(now),
    }
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    try:
        atomic.make_private_dir(layout.meta_dir)
        atomic.write_bytes_atomic(layout.last_verify, data, 0o644)
    except OSError as exc:
        raise KeystoreError(exc.filename or layout.meta_dir,
                            f"cannot record the verification result: {exc.strerror or exc}") from exc


def read_verify_result(layout: KeystoreLayout) -> VerifyRecord | None:
    """The last recorded verification, or None when there is none.

    :raises KeystoreError: the record exists but is unreadable or malformed.
    """
    path = layout.last_verify
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_bytes())
        verified_at = _dt.datetime.fromisoformat(document["verified_at"])
        if verified_at.tzinfo is None:
            verified_at = verified_at.replace(tzinfo=_dt.timezone.utc)
        record = VerifyRecord(
            passed=document["passed"] is True,
            checks=int(document["checks"]),
            failures=int(document["failures"]),
            domain_id=int(document["domain_id"]),
            verified_at=verified_at,
        )
    except OSError as exc:
        raise KeystoreError(path, f"cannot read the verification record: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KeystoreError(path, "expected a verification record (JSON with passed, checks, failures, "
                                  "domain_id, verified_at)") from None
    return record
