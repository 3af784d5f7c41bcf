"""Shared fixtures: frozen time, the example policy, the sros2 oracles beside the repo, and markers."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ros_domains import lease_domain

REPO = Path(__file__).resolve().parent.parent
POLICIES = REPO / "policies"


def oracles_dir() -> Path:
    """The read-only sros2 oracle data: ``$COBOT_SECURITY_ORACLES`` or ``../shared/oracles/sros2``."""
    env = os.environ.get("COBOT_SECURITY_ORACLES")
    return Path(env) if env else REPO.parent / "shared" / "oracles" / "sros2"


def _oracle_part(*parts: str) -> Path:
    """``oracles_dir()/<parts>``; skipped where absent (a user's clone), failed in CI (``CI=true``)."""
    path = oracles_dir().joinpath(*parts)
    if not path.exists():
        message = (f"sros2 oracle data not found at {path}: set COBOT_SECURITY_ORACLES to a folder "
                   "laid out as README.md (Testing) says")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: the oracle tests must run here)")
        pytest.skip(message)
    return path


@pytest.fixture
def oracles() -> Path:
    """The sros2 oracle folder: ``schemas/`` and ``test_policies/`` (from an sros2 source tree)."""
    for part in ("schemas", "test_policies"):
        _oracle_part(part)
    return oracles_dir()


@pytest.fixture
def sros2_example() -> Path:
    """``generated_example/`` of the oracle folder: a keystore written by sros2 itself."""
    return _oracle_part("generated_example")


@pytest.fixture
def fixed_now() -> dt.datetime:
    """A frozen 'now' so that validity windows in tests are reproducible."""
    return dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def example_policy_path() -> Path:
    """The shipped example cell policy, exercised by tests as user data."""
    return POLICIES / "workcell.yaml"


@pytest.fixture
def domain_id() -> Iterator[int]:
    """A ROS 2 / DDS domain id leased for this test alone (see ros_domains.py)."""
    lease = lease_domain()
    try:
        yield lease.domain_id
    finally:
        lease.release()
