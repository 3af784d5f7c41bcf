"""DDS tests: each test gets its own DDS domain so that parallel or repeated runs never hear each other."""

from __future__ import annotations

import pytest


@pytest.fixture
def dds_domain(domain_id: int) -> int:
    """A DDS domain id used by this test alone (leased, see test/ros_domains.py)."""
    return domain_id
