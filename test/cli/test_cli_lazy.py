"""The CLI imports only what the command being run needs (issue 11), and the catalog matches the commands."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cobot_security.cli.commands import COMMANDS
from cobot_security.cli.main import build_parser, main

#: Imports a command that does not need them must not pay for (and must not risk).
HEAVY = ("cryptography", "lxml", "rclpy", "asyncua", "cyclonedds", "yaml", "email")

_PROBE = textwrap.dedent("""
    import json, sys
    from cobot_security.cli.main import main
    try:
        main({argv!r})
    except SystemExit:
        pass
    print(json.dumps(sorted(sys.modules)))
""")


def _imported(argv: list[str]) -> list[str]:
    result = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv)], capture_output=True, text=True,
                            timeout=60, check=True)
    return list(json.loads(result.stdout.splitlines()[-1]))


def test_help_imports_no_command_module_and_nothing_heavy() -> None:
    modules = _imported(["--help"])
    assert [m for m in modules if m.startswith("cobot_security.cli.cmd_")] == []
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []


@pytest.mark.parametrize(("argv", "module"), [
    (["enclave", "create", "--help"], "cobot_security.cli.cmd_enclave"),
    (["policy", "validate", "--help"], "cobot_security.cli.cmd_policy"),
    (["rollback", "--help"], "cobot_security.cli.cmd_rotate"),
])
def test_a_command_imports_its_own_module_only(argv: list[str], module: str) -> None:
    modules = _imported(argv)
    assert [m for m in modules if m.startswith("cobot_security.cli.cmd_") and not m.startswith(module)] == []
    assert module in modules
    assert [m for m in modules if m.split(".")[0] in ("rclpy", "asyncua", "cyclonedds")] == []


def test_the_catalog_names_every_registered_command_with_its_help_line() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    registered = [(a.dest, a.help) for a in commands._choices_actions]
    assert registered == [(c.name, c.help) for c in COMMANDS]


_CREATE_PROBE = textwrap.dedent("""
    import json, sys
    from cobot_security.cli.main import main
    code = main({argv!r})
    print(json.dumps([code, sorted(sys.modules)]))
""")


def test_enclave_create_given_the_same_policy_again_reads_no_yaml(tmp_path: Path) -> None:
    """The keystore's sealed policy snapshot spares PyYAML and the loader (issue 11): init leaves it,
    a changed policy file is validated once, then served again."""
    policy = tmp_path / "workcell.yaml"
    policy.write_bytes((Path(__file__).resolve().parents[2] / "policies" / "workcell.yaml").read_bytes())
    keystore = tmp_path / "ks"
    assert main(["init", "--keystore", str(keystore), "--policy", str(policy)]) == 0
    argv = ["enclave", "create", "/cell/gripper", "--force", "--keystore", str(keystore), "--policy", str(policy)]

    def yaml_modules() -> list[str]:
        result = subprocess.run([sys.executable, "-c", _CREATE_PROBE.format(argv=argv)], capture_output=True,
                                text=True, timeout=60, check=True)
        code, modules = json.loads(result.stdout.splitlines()[-1])
        assert code == 0, result.stderr
        return [m for m in modules if m.split(".")[0] == "yaml" or m == "cobot_security.policy.load"]

    assert yaml_modules() == []
    policy.write_bytes(policy.read_bytes() + b"# edited\n")
    assert yaml_modules() != []
    assert yaml_modules() == []
