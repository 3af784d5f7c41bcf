"""``cobot-security render zenoh``: files where verify looks, one-line errors and exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from cobot_security.clock import utc_now
from cobot_security.dds.verify import self_test_policy
from cobot_security.keystore.store import init_keystore
from cobot_security.policy.export import dump_policy_yaml


def _cell(tmp_path: Path) -> tuple[Path, Path]:
    policy = self_test_policy(9)
    policy_file = tmp_path / "cell.yaml"
    policy_file.write_text(dump_policy_yaml(policy))
    init_keystore(tmp_path / "ks", policy, utc_now())
    return policy_file, tmp_path / "ks"


def test_render_writes_router_and_one_session_per_enclave(cli, tmp_path: Path) -> None:
    policy_file, keystore = _cell(tmp_path)
    result = cli("render", "zenoh", "--keystore", keystore, "--policy", policy_file, "--connect", "tls/10.0.0.1:7447")
    assert result.code == 0, result.err
    assert f"router:   {keystore / 'zenoh' / 'router.json5'}" in result.out
    session = json.loads((keystore / "zenoh" / "sessions" / "selftest" / "talker.json5").read_text())
    assert session["connect"]["endpoints"] == ["tls/10.0.0.1:7447"]
    assert "/selftest/talker:" in result.out


def test_a_plain_tcp_endpoint_is_refused(cli, tmp_path: Path) -> None:
    policy_file, keystore = _cell(tmp_path)
    result = cli("render", "zenoh", "--keystore", keystore, "--policy", policy_file, "--listen", "tcp/0.0.0.0:7447")
    assert result.code == 2
    assert result.err_lines == ["cobot-security render: error: --listen: expected a TLS endpoint like tls/[::]:7447 "
                                "(the router accepts TLS only), got 'tcp/0.0.0.0:7447'"]
    assert not (keystore / "zenoh").exists()


def test_a_missing_keystore_is_one_line(cli, tmp_path: Path) -> None:
    policy_file, _ = _cell(tmp_path)
    result = cli("render", "zenoh", "--keystore", tmp_path / "nowhere", "--policy", policy_file)
    assert result.code == 2
    assert len(result.err_lines) == 1 and "nowhere" in result.err_lines[0]
