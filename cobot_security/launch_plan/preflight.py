"""What a launch checks before it starts anything, and the one line it fails with.

Pure: the facts (probe output, ament lookups) are gathered by
:mod:`cobot_security.launch_integration.preflight` and passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cobot_security.errors import CobotSecurityError

__all__ = [
    "LAUNCHED_EXECUTABLES",
    "PROBE_ENCLAVE",
    "LaunchPreflightError",
    "install_problem",
    "security_unavailable",
]

#: The enclave the DDS Security probe runs in: the health reporter's, which every cell policy of
#: this package has (the security stack needs it).
PROBE_ENCLAVE = "/cobot_security/health_reporter"
#: The executables the launch files start by package name (``lib/cobot_security/<name>``).
LAUNCHED_EXECUTABLES: tuple[str, ...] = ("health_reporter", "supervisor", "keystore_manager", "demo_node")


class LaunchPreflightError(CobotSecurityError):
    """A launch that cannot work here stops before it starts anything (one line, exit 1)."""

    exit_code = 1


def security_unavailable(rmw: str, error: str) -> str:
    """The one line a ``secure:=true`` launch fails with when no node can start with DDS Security."""
    return (f"secure:=true, but the rmw {rmw} cannot start a node with DDS Security ({error}). "
            "Use an rmw with DDS Security (e.g. rmw_cyclonedds_cpp of a ROS 2 install), or pass "
            "secure:=false to run WITHOUT DDS Security: no authentication, no encryption and no "
            "access control on the cell's topics (the posture then shows security_env ERROR)")


def install_problem(prefix: Path | None, environ: Mapping[str, str], venv_prefix: Path) -> str | None:
    """Why ``cobot_security`` cannot be launched by package name, or None when it can.

    ``prefix`` is the package's ament prefix (None: not in the ament index). ``venv_prefix`` is
    where the README's set-up (scripts/setup.sh) lays out the ament index for a pip install.
    """
    hint = (f"after `bash scripts/setup.sh` run `export AMENT_PREFIX_PATH={venv_prefix}"
            "${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}`, or build the package with colcon "
            "(docs/launch.md, Install layout)")
    if prefix is None:
        searched = environ.get("AMENT_PREFIX_PATH") or "unset"
        return f"package cobot_security is not in the ament index (AMENT_PREFIX_PATH={searched}): {hint}"
    missing = [name for name in LAUNCHED_EXECUTABLES if not (prefix / "lib" / "cobot_security" / name).exists()]
    if missing:
        return (f"package cobot_security found at {prefix}, but {prefix / 'lib' / 'cobot_security'} lacks "
                f"{', '.join(missing)} (a pip install puts console scripts in bin/ only): {hint}")
    return None
