"""Zenoh tests: real routers and sessions on free loopback ports, one leased domain id per test."""

from __future__ import annotations

import pytest


@pytest.fixture
def zenoh_domain(domain_id: int) -> int:
    """The domain id this test's key expressions live under (leased, see test/ros_domains.py)."""
    return domain_id
