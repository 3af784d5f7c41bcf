"""DDS tests: each test gets its own DDS domain so that parallel or repeated runs never hear each other."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cobot_security.dds.verify import self_test_policy
from cobot_security.keystore.store import init_keystore
from cobot_security.policy.model import WorkcellPolicy


@pytest.fixture
def dds_domain(domain_id: int) -> int:
    """A DDS domain id used by this test alone (leased, see test/ros_domains.py)."""
    return domain_id


@pytest.fixture
def cell(tmp_path: Path, dds_domain: int) -> tuple[WorkcellPolicy, Path]:
    """A talker/listener/bystander keystore on this test's own domain (valid from the real clock's now,
    which the DDS plugins check against)."""
    policy = self_test_policy(dds_domain)
    root = tmp_path / "keystore"
    init_keystore(root, policy, dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
    return policy, root
