"""The core imports no ROS, DDS or launch module (STYLE.md rule 1), checked in fresh interpreters.

Each check runs in a subprocess so that modules imported by other tests in this session cannot
hide (or fake) a forbidden import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120

FORBIDDEN = ("rclpy", "cyclonedds", "zenoh", "launch", "launch_ros", "diagnostic_msgs", "std_srvs")

#: Adapters allowed to import ROS / DDS (not imported by the core walk).
EXCLUDED_PREFIXES = ("cobot_security.cli.", "cobot_security.nodes.")
EXCLUDED_MODULES = ("cobot_security.dds.agent", "cobot_security.dds.zenoh_agent")

_WALK_AND_IMPORT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import cobot_security

    excluded_prefixes = tuple(sys.argv[1].split(","))
    excluded = set(sys.argv[2].split(","))

    def skip(name):
        return name in excluded or name.startswith(excluded_prefixes)

    def walk(package):
        # pkgutil.walk_packages would import excluded packages to find their children; walk by
        # path instead and import only what is not excluded.
        found = []
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if skip(info.name):
                continue
            module = importlib.import_module(info.name)
            found.append(info.name)
            if info.ispkg:
                found.extend(walk(module))
        return found

    imported = ["cobot_security", *walk(cobot_security)]
    roots = sorted({name.split(".")[0] for name in sys.modules})
    print(json.dumps({"imported": imported, "roots": roots}))
    """
)

_IMPORT_ONE = textwrap.dedent(
    """
    import importlib, json, sys
    importlib.import_module(sys.argv[1])
    print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
    """
)


def _python(code: str, *args: str) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=TIMEOUT_S, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_core_modules_import_no_ros_dds_or_launch():
    report = json.loads(_python(_WALK_AND_IMPORT, ",".join(EXCLUDED_PREFIXES), ",".join(EXCLUDED_MODULES)))
    imported = set(report["imported"])

    # the walk really covered the core (guards against an empty or broken walk passing vacuously)
    for expected in ("cobot_security.errors", "cobot_security.names", "cobot_security.keystore.store",
                     "cobot_security.keystore.pki", "cobot_security.policy.load",
                     "cobot_security.policy.sros2_import", "cobot_security.dds.verify",
                     "cobot_security.dds.runner", "cobot_security.dds.zenoh_runner",
                     "cobot_security.middleware.zenoh_render", "cobot_security.policy.keyexpr",
                     "cobot_security.policy.zenoh_acl"):
        assert expected in imported, expected
    assert not any(name.startswith(EXCLUDED_PREFIXES) or name in EXCLUDED_MODULES for name in imported)
    leaked = sorted(set(FORBIDDEN) & set(report["roots"]))
    assert leaked == [], f"core import pulled in {leaked}"


def test_dds_verify_does_not_import_cyclonedds():
    roots = json.loads(_python(_IMPORT_ONE, "cobot_security.dds.verify"))

    assert "cobot_security" in roots
    assert "cyclonedds" not in roots
    assert "rclpy" not in roots


def test_cli_main_does_not_import_cyclonedds_or_ros():
    roots = json.loads(_python(_IMPORT_ONE, "cobot_security.cli.main"))

    assert "cobot_security" in roots
    leaked = sorted(set(FORBIDDEN) & set(roots))
    assert leaked == [], f"cobot_security.cli.main pulled in {leaked}"


def test_boundary_check_detects_a_forbidden_import():
    """The probe itself works: importing the DDS agent's dependency shows up in sys.modules."""
    roots = json.loads(_python(_IMPORT_ONE, "cyclonedds.domain"))

    assert "cyclonedds" in roots
