"""Something a test needs is missing: skipped on a user's machine, failed in CI (``CI=true``).

CI's set-up installs everything the suite needs, so there a missing part is a defect of the set-up,
never a reason to pass by skipping.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(message: str, *, what: str = "this test") -> NoReturn:
    """Skip with ``message``, or fail with it when ``CI=true`` (saying that ``what`` must run there)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: {what} must run here)")
    pytest.skip(message)
