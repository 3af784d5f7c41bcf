"""DDS tests: each test gets its own DDS domain so that parallel or repeated runs never hear each other."""

from __future__ import annotations

import itertools
import os

import pytest

_DOMAINS = itertools.count(20 + (os.getpid() % 50) * 4)


@pytest.fixture
def dds_domain() -> int:
    """A DDS domain id (0..232) used by this test alone."""
    return next(_DOMAINS) % 230
