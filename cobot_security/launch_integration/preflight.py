"""Checks a launch runs before it starts anything: installed by package name, DDS Security usable.

Each is an ``OpaqueFunction`` body that raises
:class:`~cobot_security.launch_plan.preflight.LaunchPreflightError`; launch then logs its one line
and ``ros2 launch`` exits 1 without having started a node.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_prefix
from launch.action import Action
from launch.launch_context import LaunchContext

from cobot_security.launch_plan.preflight import (
    PROBE_ENCLAVE,
    LaunchPreflightError,
    install_problem,
    security_unavailable,
)

__all__ = ["PROBE_TIMEOUT_S", "check_install", "check_security"]

PACKAGE = "cobot_security"
#: A secured participant is created in well under a second; a hung rmw must not hang the launch.
PROBE_TIMEOUT_S = 30.0


def check_install(_context: LaunchContext) -> list[Action]:
    """Fail when launch_ros could not find the package's executables by package name."""
    try:
        prefix: Path | None = Path(get_package_prefix(PACKAGE))
    except (PackageNotFoundError, ValueError, OSError):  # OSError: AMENT_PREFIX_PATH unset
        prefix = None
    problem = install_problem(prefix, os.environ, Path(sys.prefix))
    if problem is not None:
        raise LaunchPreflightError(problem)
    return []


def check_security(_context: LaunchContext) -> list[Action]:
    """Fail when no node can start with the launch's ``ROS_SECURITY_*`` environment on this rmw.

    Runs :mod:`cobot_security.nodes.security_probe` in a child process with discovery off, so the
    probe never joins the cell's graph.
    """
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="OFF")
    rmw = os.environ.get("RMW_IMPLEMENTATION") or "(default)"
    argv = [sys.executable, "-m", "cobot_security.nodes.security_probe", PROBE_ENCLAVE]
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LaunchPreflightError(security_unavailable(rmw, f"no answer within {PROBE_TIMEOUT_S:.0f} s")) from exc
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        raise LaunchPreflightError(security_unavailable(rmw, lines[-1] if lines else f"exit code {proc.returncode}"))
    return []
