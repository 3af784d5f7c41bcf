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
    read_verify_results,
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


def test_version_1_record_reads_as_a_cyclone_dds_proof(tmp_path: Path, fixed_now: dt.datetime) -> None:
    layout = KeystoreLayout(tmp_path)
    layout.meta_dir.mkdir()
    layout.last_verify.write_text(json.dumps({"version": 1, "passed": True, "checks": 9, "failures": 0,
                                                    "domain_id": 42, "verified_at": fixed_now.isoformat()}))
    records = read_verify_results(layout)
    assert list(records) == ["cyclonedds"]
    assert records["cyclonedds"] == VerifyRecord(True, 9, 0, 42, fixed_now, "cyclonedds")


def test_each_middleware_keeps_its_own_record(tmp_path: Path, fixed_now: dt.datetime) -> None:
    layout = KeystoreLayout(tmp_path)
    record_verify_result(layout, passed=True, checks=9, failures=0, domain_id=42, now=fixed_now)
    later = fixed_now + dt.timedelta(hours=2)
    record_verify_result(layout, passed=False, checks=7, failures=1, domain_id=42, now=later, middleware="zenoh")
    records = read_verify_results(layout)
    assert records["cyclonedds"].verified_at == fixed_now and records["cyclonedds"].passed
    assert records["zenoh"] == VerifyRecord(False, 7, 1, 42, later, "zenoh")
    assert read_verify_result(layout) == records["zenoh"]  # the most recent run
    assert json.loads(layout.last_verify.read_text())["version"] == 2


def test_an_unreadable_record_is_replaced_by_the_new_run(tmp_path: Path, fixed_now: dt.datetime) -> None:
    layout = KeystoreLayout(tmp_path)
    layout.meta_dir.mkdir()
    layout.last_verify.write_bytes(b"garbage")
    record_verify_result(layout, passed=True, checks=3, failures=0, domain_id=1, now=fixed_now, middleware="fastdds")
    assert list(read_verify_results(layout)) == ["fastdds"]
