"""evidence: the record of the last DDS Security proof round-trips and rejects garbage."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest

from cobot_security.errors import KeystoreError
from cobot_security.keystore.evidence import (
    VerifyRecord,
    read_verify_result,
    record_verify_result,
)
from cobot_security.keystore.layout import KeystoreLayout


def test_no_record_is_none(tmp_path: Path) -> None:
    assert read_verify_result(KeystoreLayout(tmp_path)) is None


def test_round_trip_and_replace(tmp_path: Path, fixed_now: dt.datetime) -> None:
    layout = KeystoreLayout(tmp_path)
    record_verify_result(layout, passed=False, checks=10, failures=2, domain_id=42, now=fixed_now)
    later = fixed_now + dt.timedelta(hours=1, microseconds=5)
    record_verify_result(layout, passed=True, checks=12, failures=0, domain_id=42, now=later)
    assert read_verify_result(layout) == VerifyRecord(
        passed=True, checks=12, failures=0, domain_id=42, verified_at=fixed_now + dt.timedelta(hours=1)
    )
    assert stat.S_IMODE(layout.meta_dir.stat().st_mode) == 0o700
    assert [p.name for p in layout.meta_dir.iterdir()] == ["last_verify.json"]


@pytest.mark.parametrize("content", [b"not json", b"{}", b'{"passed": true, "checks": 1}',
                                     json.dumps({"passed": True, "checks": 1, "failures": 0, "domain_id": 0,
                                                 "verified_at": "yesterday"}).encode()])
def test_malformed_record_raises(tmp_path: Path, content: bytes) -> None:
    layout = KeystoreLayout(tmp_path)
    layout.meta_dir.mkdir()
    layout.last_verify.write_bytes(content)
    with pytest.raises(KeystoreError, match="expected a verification record") as info:
        read_verify_result(layout)
    assert info.value.path == str(layout.last_verify)


def test_passed_must_be_true_literally(tmp_path: Path, fixed_now: dt.datetime) -> None:
    layout = KeystoreLayout(tmp_path)
    record_verify_result(layout, passed=True, checks=1, failures=0, domain_id=0, now=fixed_now)
    path = layout.last_verify
    path.write_text(path.read_text().replace("true", '"yes"'))
    record = read_verify_result(layout)
    assert record is not None and record.passed is False
