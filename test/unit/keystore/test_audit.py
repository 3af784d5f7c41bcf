"""The audit log: records chain and verify; every kind of tampering is detected and named by line."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest

from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore.audit import (
    GENESIS_PREV,
    AuditEvent,
    append_audit,
    read_audit_log,
    verify_audit_log,
)
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.store import init_keystore
from cobot_security.policy.model import WorkcellPolicy

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def layout(tmp_path: Path) -> KeystoreLayout:
    """A bare layout holding four audit records (seq 1..4)."""
    layout = KeystoreLayout(tmp_path / "ks")
    layout.root.mkdir()
    for i, event in enumerate(("init", "issue", "rotate", "revoke")):
        append_audit(layout, [AuditEvent(event, f"/cell/e{i}", {"serial": f"{i:x}"})], T0 + dt.timedelta(minutes=i))
    return layout


def _lines(layout: KeystoreLayout) -> list[str]:
    return layout.audit_log.read_text().splitlines(keepends=True)


def _write(layout: KeystoreLayout, lines: list[str]) -> None:
    layout.audit_log.write_text("".join(lines))


def test_records_chain_and_verify(layout: KeystoreLayout) -> None:
    records = read_audit_log(layout)
    result = verify_audit_log(layout)
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert records[0].prev == GENESIS_PREV and records[1].prev != GENESIS_PREV
    assert [r.event for r in records] == ["init", "issue", "rotate", "revoke"]
    assert records[2].time == "2026-11-29T12:02:00+00:00"
    assert result.ok and result.records == 4 and result.first_bad is None


def test_key_and_log_are_private(layout: KeystoreLayout) -> None:
    assert stat.S_IMODE(os.stat(layout.audit_key).st_mode) == 0o600
    assert len(layout.audit_key.read_bytes()) == 32
    assert stat.S_IMODE(os.stat(layout.audit_log).st_mode) == 0o600
    assert layout.audit_key.read_bytes().hex() not in layout.audit_log.read_text()


# Every field but the MAC itself, each edited in a middle record.  The MAC must cover each one:
# were ``details`` left out, the chain would still flag the edit, but one line late (issue 16).
EDITS = {
    "seq": 7,
    "time": "2026-11-29T13:00:00+00:00",
    "event": "rollback",
    "subject": "/cell/someone_else",
    "details": {"serial": "ff"},
    "prev": "f" * 64,
}


@pytest.mark.parametrize(("name", "value"), EDITS.items(), ids=list(EDITS))
def test_edited_field_is_named(layout: KeystoreLayout, name: str, value: object) -> None:
    lines = _lines(layout)
    record = json.loads(lines[1])
    record[name] = value
    lines[1] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    _write(layout, lines)
    result = verify_audit_log(layout)
    assert (result.ok, result.first_bad, result.records) == (False, 2, 1)
    assert "MAC mismatch" in result.problem


def test_edited_details_value_is_named_at_its_own_line(layout: KeystoreLayout) -> None:
    lines = _lines(layout)
    lines[2] = lines[2].replace('"serial":"2"', '"serial":"3"')
    assert lines[2] != _lines(layout)[2]
    _write(layout, lines)
    result = verify_audit_log(layout)
    assert (result.ok, result.first_bad) == (False, 3)
    assert "MAC mismatch" in result.problem


def test_deleted_line_is_named(layout: KeystoreLayout) -> None:
    lines = _lines(layout)
    del lines[1]
    _write(layout, lines)
    result = verify_audit_log(layout)
    assert (result.ok, result.first_bad) == (False, 2)
    assert "sequence number 3, expected 2" in result.problem


def test_reordered_lines_are_named(layout: KeystoreLayout) -> None:
    lines = _lines(layout)
    lines[1], lines[2] = lines[2], lines[1]
    _write(layout, lines)
    result = verify_audit_log(layout)
    assert (result.ok, result.first_bad) == (False, 2)
    assert "reordered" in result.problem


def test_inserted_line_is_named(layout: KeystoreLayout) -> None:
    lines = _lines(layout)
    lines.insert(2, lines[1])  # a replayed, validly MAC'd record
    _write(layout, lines)
    result = verify_audit_log(layout)
    assert (result.ok, result.first_bad) == (False, 3)
    assert "inserted" in result.problem


def test_truncated_tail_line_is_named(layout: KeystoreLayout) -> None:
    data = layout.audit_log.read_bytes()
    layout.audit_log.write_bytes(data[:-20])
    result = verify_audit_log(layout)
    assert (result.ok, result.first_bad, result.records) == (False, 4, 3)
    assert "truncated" in result.problem


def test_deleted_tail_record_is_named(layout: KeystoreLayout) -> None:
    _write(layout, _lines(layout)[:-1])
    result = verify_audit_log(layout)
    assert (result.ok, result.first_bad) == (False, 4)
    assert "the last lines were deleted" in result.problem


def test_wrong_key_is_a_mac_mismatch(layout: KeystoreLayout) -> None:
    layout.audit_key.write_bytes(b"\x01" * 32)
    result = verify_audit_log(layout)
    assert (result.ok, result.first_bad) == (False, 1)
    assert "MAC mismatch" in result.problem


def test_forged_record_with_recomputed_chain_fails_the_mac(layout: KeystoreLayout) -> None:
    lines = _lines(layout)
    record = json.loads(lines[3])
    record["details"] = {"serial": "ff"}
    record["mac"] = "0" * 64
    lines[3] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    _write(layout, lines)
    result = verify_audit_log(layout)
    assert (result.ok, result.first_bad) == (False, 4)


def test_garbage_line_is_named(layout: KeystoreLayout) -> None:
    lines = _lines(layout)
    lines[0] = "not json\n"
    _write(layout, lines)
    result = verify_audit_log(layout)
    assert (result.ok, result.first_bad, result.problem) == (False, 1, "not valid JSON")


def test_missing_log_or_key_is_not_ok(tmp_path: Path, layout: KeystoreLayout) -> None:
    layout.audit_log.unlink()
    missing_log = verify_audit_log(layout)
    no_key = verify_audit_log(KeystoreLayout(tmp_path / "empty"))
    assert not missing_log.ok and "no audit log" in missing_log.problem
    assert not no_key.ok and "no audit key" in no_key.problem


def test_append_refuses_after_a_truncated_tail(layout: KeystoreLayout) -> None:
    layout.audit_log.write_bytes(layout.audit_log.read_bytes()[:-5])
    with pytest.raises(KeystoreError, match="incomplete line"):
        append_audit(layout, [AuditEvent("issue", "/x", {})], T0)


@pytest.mark.parametrize(("event", "details", "now", "match"), [
    ("Bad Event", {}, T0, "event"),
    ("issue\n", {}, T0, "event"),  # matched whole: '$' alone would let the newline through
    ("issue", {"key": "-----BEGIN PRIVATE KEY-----"}, T0, "no key material"),
    ("issue", {}, T0.replace(tzinfo=None), "timezone-aware"),
])
def test_append_rejects_bad_input(layout: KeystoreLayout, event: str, details: dict[str, str],
                                  now: dt.datetime, match: str) -> None:
    with pytest.raises(InputError, match=match):
        append_audit(layout, [AuditEvent(event, "/x", details)], now)
    assert verify_audit_log(layout).records == 4


def test_init_and_create_enclave_are_audited(tmp_path: Path, policy: WorkcellPolicy, fixed_now: dt.datetime) -> None:
    ks = init_keystore(tmp_path / "ks", policy, fixed_now)
    ks.create_enclave(policy.enclaves[0], policy, fixed_now, force=True)
    records = read_audit_log(ks.layout)
    assert [(r.event, r.subject) for r in records] == [
        ("init", "/"), ("issue", "/cell/arm_driver"), ("issue", "/gripper"), ("issue", "/cell/arm_driver")]
    assert records[-1].details["replaced"] == "true"
    assert verify_audit_log(ks.layout).ok
