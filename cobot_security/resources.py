"""Where the package's shipped data (policies, launch files) and default keystore live.

Three installs are supported: a ROS 2 (colcon/ament) install with ``share/cobot_security``, a pip
install with the same share tree under ``sys.prefix``, and a source checkout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

PACKAGE = "cobot_security"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_candidates() -> list[Path]:
    """Directories that may hold the package's ``policies/`` and ``launch/``, most specific first."""
    candidates = []
    try:
        # Deferred and optional: the ament index exists only in a ROS 2 install.
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # noqa: BLE001 - ament index absent or package not registered there
        pass
    candidates.append(_SOURCE_ROOT)
    candidates.append(Path(sys.prefix) / "share" / PACKAGE)
    return candidates


def shipped_file(relative: str) -> Path:
    """Path of a shipped data file such as ``policies/workcell.yaml`` (first install that has it)."""
    for base in share_candidates():
        path = base / relative
        if path.exists():
            return path
    return _SOURCE_ROOT / relative


def default_keystore(environ: Mapping[str, str] | None = None) -> Path:
    """``$ROS_SECURITY_KEYSTORE`` when set, else ``keystores/default`` (relative to the cwd)."""
    env = os.environ if environ is None else environ
    value = env.get("ROS_SECURITY_KEYSTORE")
    return Path(value) if value else Path("keystores") / "default"
