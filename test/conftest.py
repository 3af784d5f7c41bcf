"""Shared fixtures: frozen time, the example policy, the sros2 oracles beside the repo, and markers."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci_required import missing
from ros_domains import lease_domain

from cobot_security.keystore.issuing import single_threaded

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
        missing(f"sros2 oracle data not found at {path}: set COBOT_SECURITY_ORACLES to a folder "
                "laid out as README.md (Testing) says", what="the oracle tests")
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


#: Set in the fresh interpreter a ``single_threaded`` test is re-run in (it must not re-run again).
_FRESH = "COBOT_TEST_FRESH_INTERPRETER"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Run a ``single_threaded`` test in a fresh interpreter when this one runs other threads.

    Parallel issuing forks only a single-threaded process (forking beside DDS threads can deadlock
    the child), and an earlier test that started an rclpy node leaves the DDS threads running for
    the life of this process.  Such a test then runs as its own pytest process, and passes here
    only if it passed there.
    """
    if item.get_closest_marker("single_threaded") is not None and not single_threaded():
        if os.environ.get(_FRESH):
            pytest.fail("other threads run in a fresh interpreter: the test cannot fork its workers")

        def run_fresh() -> None:
            env = {**os.environ, _FRESH: "1"}
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", item.nodeid],
                                  cwd=item.config.rootpath, env=env, capture_output=True, text=True, timeout=240)
            if done.returncode != 0:
                pytest.fail(f"failed in a fresh interpreter:\n{done.stdout[-4000:]}{done.stderr[-2000:]}")

        item.runtest = run_fresh  # type: ignore[method-assign]
    yield

