"""``--help`` for every command and verb, usage errors, and the console entry points as real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cobot_security import __version__
from cobot_security.cli.main import main

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60

#: argv before --help → a phrase of that parser's description (whitespace-normalised)
HELP_CASES = [
    pytest.param([], "SROS2 keystores, least-privilege DDS permissions", id="top"),
    pytest.param(["init"], "Create a keystore that rmw implementations load as-is", id="init"),
    pytest.param(["enclave"], "Create or list the enclaves of a keystore", id="enclave"),
    pytest.param(["enclave", "create"], "Issue a new key pair and certificate for ENCLAVE", id="enclave-create"),
    pytest.param(["enclave", "list"], "List the keystore's enclaves", id="enclave-list"),
    pytest.param(["policy"], "Validate, lint, import, learn or diff workcell policies", id="policy"),
    pytest.param(["policy", "validate"], "Load the policy; print a summary", id="policy-validate"),
    pytest.param(["policy", "lint"], "Report hygiene findings", id="policy-lint"),
    pytest.param(["policy", "import-sros2"], "Convert an sros2 policy XML", id="policy-import-sros2"),
    pytest.param(["verify"], "Run one plan on each middleware", id="verify"),
    pytest.param(["render"], "Configuration for middlewares not secured by DDS permissions", id="render"),
    pytest.param(["render", "zenoh"], "Write router.json5 (TLS only", id="render-zenoh"),
]


def _run_expecting_exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int | str | None, str, str]:
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    captured = capsys.readouterr()
    return excinfo.value.code, captured.out, captured.err


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("COBOT_SECURITY_CA_PASSPHRASE", None)
    return env


@pytest.mark.parametrize(("argv", "phrase"), HELP_CASES)
def test_help_exits_zero_with_description(capsys, argv, phrase):
    code, out, err = _run_expecting_exit([*argv, "--help"], capsys)

    assert code == 0
    assert err == ""
    assert out.startswith("usage: cobot-security" + "".join(f" {a}" for a in argv))
    assert phrase in " ".join(out.split())


def test_top_level_help_lists_every_command(capsys):
    code, out, _ = _run_expecting_exit(["--help"], capsys)

    assert code == 0
    for command in ("init", "enclave", "policy", "verify"):
        assert f"    {command}" in out, command


def test_version(capsys):
    code, out, _ = _run_expecting_exit(["--version"], capsys)

    assert code == 0
    assert out.strip() == f"cobot-security {__version__}"


@pytest.mark.parametrize("argv", [
    pytest.param(["frobnicate"], id="unknown-command"),
    pytest.param([], id="no-command"),
    pytest.param(["enclave"], id="no-verb"),
    pytest.param(["enclave", "delete"], id="unknown-verb"),
    pytest.param(["policy", "lint", "--no-such-flag"], id="unknown-flag"),
    pytest.param(["enclave", "create"], id="missing-argument"),
    pytest.param(["init", "--passphrase-env", "X", "--ask-passphrase"], id="exclusive-flags"),
])
def test_usage_errors_exit_two(capsys, argv):
    code, out, err = _run_expecting_exit(argv, capsys)

    assert code == 2
    assert out == ""
    assert "error:" in err
    assert "Traceback" not in err


def test_unknown_command_names_the_choices(capsys):
    code, _, err = _run_expecting_exit(["frobnicate"], capsys)

    assert code == 2
    assert "frobnicate" in err
    assert "init" in err and "verify" in err


def _entry_points() -> list[list[str]]:
    commands = [[sys.executable, "-m", "cobot_security.cli.main"]]
    script = shutil.which("cobot-security", path=str(Path(sys.executable).parent))
    if script is not None:
        commands.append([script])
    return commands


def test_module_entry_point_help():
    for command in _entry_points():
        proc = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=TIMEOUT_S,
                              env=_subprocess_env(), cwd=REPO, check=False)

        assert proc.returncode == 0, (command, proc.stderr)
        assert proc.stdout.startswith("usage: cobot-security")
        assert "init" in proc.stdout and "verify" in proc.stdout
        assert proc.stderr == ""


def test_module_entry_point_bad_input_is_one_line(tmp_path):
    missing = tmp_path / "missing.yaml"
    for command in _entry_points():
        proc = subprocess.run([*command, "policy", "validate", "--policy", str(missing)], capture_output=True,
                              text=True, timeout=TIMEOUT_S, env=_subprocess_env(), cwd=tmp_path, check=False)

        assert proc.returncode == 2, (command, proc.stderr)
        assert proc.stdout == ""
        assert proc.stderr.splitlines() == [proc.stderr.rstrip("\n")]
        assert proc.stderr.startswith("cobot-security policy: error: ")
        assert str(missing) in proc.stderr


def test_module_entry_point_init_and_list(tmp_path):
    keystore = tmp_path / "ks"
    command = _entry_points()[0]
    init = subprocess.run([*command, "init", "--keystore", str(keystore)], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=_subprocess_env(), cwd=tmp_path, check=False)

    assert init.returncode == 0, init.stderr
    assert "enclave(s)" in init.stdout

    listing = subprocess.run([*command, "enclave", "list", "--keystore", str(keystore)], capture_output=True,
                             text=True, timeout=TIMEOUT_S, env=_subprocess_env(), cwd=tmp_path, check=False)

    assert listing.returncode == 0, listing.stderr
    assert "/cell/arm_driver" in listing.stdout


def test_default_keystore_comes_from_environment(cli, tmp_path, monkeypatch):
    keystore = tmp_path / "from_env"
    monkeypatch.setenv("ROS_SECURITY_KEYSTORE", str(keystore))

    result = cli("init", "--no-enclaves")

    assert result.code == 0, result.err
    assert (keystore / "public" / "identity_ca.cert.pem").is_file()


def test_closed_stdout_pipe_gives_no_traceback(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes anything: every write fails with EPIPE
    try:
        proc = subprocess.run([*_entry_points()[0], "policy", "lint", "--json", "--policy",
                               str(REPO / "test" / "assets" / "policies" / "weak.yaml")],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT_S,
                              env=_subprocess_env(), cwd=tmp_path, check=False)
    finally:
        os.close(write_end)

    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "BrokenPipeError" not in proc.stderr
