"""Build (once per source change) the Fast DDS agent, a small C++ program against Debian's libfastrtps.

The Fast DDS security plugins exist only in the C++ library (the PyPI ROS wheels ship Fast DDS
without them), so the Fast DDS proof runs a compiled agent: ``fastdds/agent.cpp`` beside this
module, compiled with g++ into ``<venv>/libexec/cobot_security/fastdds-agent-<source hash>``.  A
changed source gets a new name, so a stale binary is never run.  ``scripts/setup.sh`` calls
``python -m cobot_security.dds.fastdds_build``; the runner builds on first use when set-up did not.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cobot_security.errors import DdsUnavailableError

SOURCE = Path(__file__).resolve().parent / "fastdds" / "agent.cpp"
COMPILER = "g++"
FLAGS = ("-std=c++17", "-O2", "-Wall")
LIBRARIES = ("-lfastrtps", "-lfastcdr")
BUILD_TIMEOUT_S = 600.0
_PREFIX = "fastdds-agent-"


def source_digest() -> str:
    """Hash of the agent source and the build command: the cache key of the binary."""
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(" ".join((COMPILER, *FLAGS, *LIBRARIES)).encode())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """Where built agents live: ``$COBOT_SECURITY_AGENT_CACHE`` or ``<sys.prefix>/libexec/cobot_security``."""
    override = os.environ.get("COBOT_SECURITY_AGENT_CACHE")
    return Path(override) if override else Path(sys.prefix) / "libexec" / "cobot_security"


def agent_path() -> Path:
    """The path of the agent built from the current source (it may not exist yet)."""
    return cache_dir() / f"{_PREFIX}{source_digest()}"


def _compile(output: Path) -> None:
    command = [COMPILER, *FLAGS, "-o", str(output), str(SOURCE), *LIBRARIES]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise DdsUnavailableError(f"cannot build the Fast DDS agent: {COMPILER} is not installed "
                                  "(scripts/setup.sh installs g++ and libfastrtps-dev)") from None
    except subprocess.TimeoutExpired:
        raise DdsUnavailableError(f"building the Fast DDS agent took over {BUILD_TIMEOUT_S:.0f}s") from None
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "error" in line] or proc.stderr.splitlines()[-1:]
        raise DdsUnavailableError(
            "cannot build the Fast DDS agent (scripts/setup.sh installs libfastrtps-dev): "
            + (errors[0].strip()[:300] if errors else f"{COMPILER} exited with status {proc.returncode}"))


def build_agent() -> Path:
    """Return the agent for the current source, compiling it first when it is not built yet.

    Compiles into a temporary file in the cache directory and renames it into place, so a reader
    never sees half a binary; older builds are removed.

    :raises DdsUnavailableError: g++ or the Fast DDS headers/libraries are missing, or compiling fails.
    """
    target = agent_path()
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        staged = Path(tmp) / target.name
        _compile(staged)
        os.chmod(staged, 0o755)
        os.replace(staged, target)
    for old in target.parent.glob(f"{_PREFIX}*"):
        if old != target and old.is_file():
            old.unlink(missing_ok=True)
    return target


def main() -> int:
    """Build the agent if needed and print its path (exit 1 with a one-line reason on failure)."""
    if shutil.which(COMPILER) is None:
        print(f"fastdds_build: {COMPILER} not found", file=sys.stderr)
        return 1
    try:
        print(build_agent())
    except DdsUnavailableError as exc:
        print(f"fastdds_build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
