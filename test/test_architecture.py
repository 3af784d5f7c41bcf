"""The house's structure, read from the source: no import cycles, and function-level imports only with a reason.

Every ``import`` statement of the package counts — at module level, inside functions and under
``TYPE_CHECKING`` — so a cycle cannot hide behind an import placed late (issue 10).  A module
cycle (a imports b imports a) and a package cycle (``cobot_security.health`` ↔
``cobot_security.scan``; top-level modules count as packages of their own) both fail.  A
function-level import is accepted only when a comment on its line or the line above says why it
is deferred (an optional heavy dependency: rclpy, asyncua, a middleware binding...).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "cobot_security"


@dataclass(frozen=True)
class ImportSite:
    """One import statement: where it is, what it names, whether it sits inside a function."""

    module: str
    target: str
    line: int
    in_function: bool


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix for alias in node.names]


def _sites() -> list[ImportSite]:
    modules = _modules()
    known = set(modules)
    sites: list[ImportSite] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        inner = {id(n) for f in functions for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, name, path.name == "__init__.py", known):
                    sites.append(ImportSite(name, target, node.lineno, id(node) in inner))
    return sites


def _internal(target: str, known: set[str]) -> str | None:
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative enough for us)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_import_cycle_between_modules() -> None:
    known = set(_modules())
    edges: dict[str, set[str]] = {}
    for site in _sites():
        target = _internal(site.target, known)
        if target is not None and target != site.module and not site.module.startswith(target + "."):
            edges.setdefault(site.module, set()).add(target)
    assert len(edges) > 50  # the walk really saw the package
    assert _cycles(edges) == []


def test_no_import_cycle_between_packages() -> None:
    known = set(_modules())
    edges: dict[str, set[str]] = {}
    for site in _sites():
        target = _internal(site.target, known)
        if target is not None and _package(target) != _package(site.module):
            edges.setdefault(_package(site.module), set()).add(_package(target))
    assert {"cobot_security.keystore", "cobot_security.policy", "cobot_security.health"} <= set(edges)
    assert _cycles(edges) == []


def _explained(lines: list[str], index: int) -> bool:
    """A comment on the import's line, or on the line above its block of consecutive imports."""
    if "#" in lines[index]:
        return True
    while index > 0 and lines[index - 1].strip().startswith(("import ", "from ")):
        index -= 1
    return index > 0 and lines[index - 1].strip().startswith("#")


def test_function_level_imports_say_why_they_are_deferred() -> None:
    modules = _modules()
    unexplained = []
    for site in _sites():
        if not site.in_function:
            continue
        lines = modules[site.module].read_text().splitlines()
        if not _explained(lines, site.line - 1):
            unexplained.append(f"{site.module}:{site.line} imports {site.target}")
    assert unexplained == []
