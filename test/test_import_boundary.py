"""The ROS boundary is structural (STYLE.md rule 1): ROS, DDS and launch imports live in the adapters.

Two views of one rule:

* *where*: every module's source is parsed and each import is read, at any depth (module level,
  inside functions and classes, under ``try`` or ``TYPE_CHECKING``, and ``importlib.import_module``
  / ``__import__`` calls with a literal name).  Only the packages in :data:`ROS_ADAPTERS` may
  import rclpy, message/service packages, launch, ros2doctor, cyclonedds or zenoh.  The core
  imports neither those nor the adapter or entry-point packages.
* *what*: every core module is imported in a fresh interpreter and nothing forbidden may be
  loaded, so that no third-party dependency smuggles ROS in either.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO / "cobot_security"
TIMEOUT_S = 120

#: The adapter packages: the only places that may import ROS, DDS or launch modules.
ROS_ADAPTERS = (
    "cobot_security.nodes",               # rclpy nodes, the demo's monitor node, ros2doctor plugins
    "cobot_security.launch_integration",  # launch / launch_ros actions
    "cobot_security.dds",                 # DDS agents (Cyclone DDS, Fast DDS, Zenoh) in child processes
)
#: Entry points that compose adapters (CLI, demo) but import no ROS module themselves.
ENTRY_POINTS = ("cobot_security.cli", "cobot_security.demo")

_FORBIDDEN_EXACT = {"rclpy", "rcl_interfaces", "ros2doctor", "cyclonedds", "zenoh"}


def is_forbidden(module: str) -> bool:
    """rclpy, *_msgs, *_srvs, rcl_interfaces, launch*, ros2doctor, cyclonedds or zenoh."""
    root = module.split(".")[0]
    return (root in _FORBIDDEN_EXACT or root.startswith("launch")
            or root.endswith("_msgs") or root.endswith("_srvs"))


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, at any nesting depth."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from cobot_security import nodes` names a submodule
                yield node.lineno, f"{target}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("__import__", "import_module")))):
            yield node.lineno, node.args[0].value


def package_modules() -> list[tuple[str, Path]]:
    found = [(module_name(p), p) for p in sorted(PACKAGE_DIR.rglob("*.py"))]
    assert len(found) > 80, f"the walk found only {len(found)} modules under {PACKAGE_DIR}"
    return found


def _imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    return list(imported_names(path.read_text(encoding="utf-8"), module, path.name == "__init__.py"))


def test_ros_dds_and_launch_imports_live_only_in_the_adapter_packages() -> None:
    outside: list[str] = []
    inside: set[str] = set()
    for module, path in package_modules():
        for line, name in _imports_of(path, module):
            if not is_forbidden(name):
                continue
            if _in(module, ROS_ADAPTERS):
                inside.add(module.split(".")[1])
            else:
                outside.append(f"{path.relative_to(REPO)}:{line}: imports {name}")
    assert outside == [], "ROS/DDS/launch imports outside the adapter packages:\n" + "\n".join(outside)
    # The scan really sees the adapters' imports (it cannot pass because it reads nothing).
    assert inside == {"nodes", "launch_integration", "dds"}, inside


def test_core_imports_no_adapter_or_entry_point() -> None:
    upward: list[str] = []
    for module, path in package_modules():
        if _in(module, ROS_ADAPTERS + ENTRY_POINTS):
            continue
        for line, name in _imports_of(path, module):
            if _in(name, ROS_ADAPTERS + ENTRY_POINTS):
                upward.append(f"{path.relative_to(REPO)}:{line}: imports {name}")
    assert upward == [], "core modules importing adapters (dependencies must point inwards):\n" + "\n".join(upward)


def test_the_source_scan_sees_every_kind_of_import() -> None:
    source = textwrap.dedent(
        """
        import os
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from std_srvs.srv import Trigger
        def late():
            import rclpy.node
            from launch_ros.actions import Node
            try:
                from ros2doctor.api import DoctorCheck
            except ImportError:
                pass
            importlib.import_module("zenoh")
            __import__("cyclonedds.domain")
        class Lazy:
            def run(self):
                from diagnostic_msgs.msg import DiagnosticArray
                from rcl_interfaces.msg import ParameterDescriptor
                from .sibling import thing
        """
    )
    names = [name for _line, name in imported_names(source, "cobot_security.policy.example", False)]
    flagged = sorted({n.split(".")[0] for n in names if is_forbidden(n)})
    assert flagged == ["cyclonedds", "diagnostic_msgs", "launch_ros", "rcl_interfaces", "rclpy",
                       "ros2doctor", "std_srvs", "zenoh"]
    assert "cobot_security.policy.sibling" in names
    assert not is_forbidden("os") and not is_forbidden("lxml.etree") and not is_forbidden("cobot_security.launch_plan")


_WALK_AND_IMPORT = textwrap.dedent(
    """
    import importlib, json, sys
    for name in sys.argv[1:]:
        importlib.import_module(name)
    print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
    """
)

_IMPORT_ONE = textwrap.dedent(
    """
    import importlib, json, sys
    importlib.import_module(sys.argv[1])
    print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
    """
)


def _python(code: str, *args: str) -> list[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=TIMEOUT_S, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_importing_the_whole_core_loads_no_ros_dds_or_launch() -> None:
    core = [m for m, _p in package_modules() if not _in(m, ROS_ADAPTERS + ENTRY_POINTS)]
    for expected in ("cobot_security.errors", "cobot_security.keystore.store", "cobot_security.policy.load",
                     "cobot_security.launch_plan.node_spec", "cobot_security.export.doctor",
                     "cobot_security.middleware.zenoh_render", "cobot_security.policy.keyexpr",
                     "cobot_security.policy.zenoh_acl"):
        assert expected in core, expected
    roots = _python(_WALK_AND_IMPORT, *core)
    assert "cobot_security" in roots
    leaked = sorted(r for r in roots if is_forbidden(r))
    assert leaked == [], f"importing the core pulled in {leaked}"


@pytest.mark.parametrize("module", ["cobot_security.dds.verify", "cobot_security.dds.runner",
                                    "cobot_security.dds.zenoh_runner"])
def test_dds_planning_does_not_import_a_middleware(module: str) -> None:
    """The DDS adapter runs its middlewares in child processes: its planning side loads none of them."""
    roots = _python(_IMPORT_ONE, module)

    assert "cobot_security" in roots
    leaked = sorted(r for r in roots if is_forbidden(r))
    assert leaked == [], f"{module} pulled in {leaked}"


def test_cli_main_does_not_import_cyclonedds_or_ros() -> None:
    roots = _python(_IMPORT_ONE, "cobot_security.cli.main")

    assert "cobot_security" in roots
    leaked = sorted(r for r in roots if is_forbidden(r))
    assert leaked == [], f"cobot_security.cli.main pulled in {leaked}"


def test_boundary_check_detects_a_forbidden_import() -> None:
    """The probe itself works: importing an adapter shows its dependency in sys.modules."""
    roots = _python(_IMPORT_ONE, "cobot_security.nodes.demo_node")

    assert "rclpy" in roots
