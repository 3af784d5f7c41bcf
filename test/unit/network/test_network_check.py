"""check_ruleset on captured `nft -j` JSON: OK, missing, drifted, extra accept, policy accept; records."""

import copy
import json
from pathlib import Path

import pytest

from cobot_security.cli.main import main
from cobot_security.errors import InputError
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.network.check import (
    check_ruleset,
    read_network_check,
    record_network_check,
)
from cobot_security.network.load import load_network
from cobot_security.status import Level

from .sample_ruleset import EXAMPLE_RULESET

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def network():
    return load_network(REPO / "policies" / "network.yaml")


def _rules(ruleset):
    return [item["rule"] for item in ruleset["nftables"] if "rule" in item]


def test_rendered_ruleset_is_ok(network):
    [finding] = check_ruleset(network, EXAMPLE_RULESET)
    assert finding.level is Level.OK
    assert finding.name == "cobot_security/network_ruleset/gateway"
    assert finding.value("forward_policy") == "drop"
    assert finding.value("conduits_missing") == "" and finding.value("extra_accepts") == ""
    assert finding.value("references") == "IEC 62443-3-3 SR 5.1, SR 5.2"


def test_missing_conduit(network):
    ruleset = copy.deepcopy(EXAMPLE_RULESET)
    ruleset["nftables"] = [i for i in ruleset["nftables"]
                           if i.get("rule", {}).get("comment") != "conduit:https_ent_to_mes"]
    [finding] = check_ruleset(network, ruleset)
    assert finding.level is Level.ERROR
    assert finding.value("conduits_missing") == "https_ent_to_mes"
    assert "conduit https_ent_to_mes missing" in finding.message


def test_drifted_ports_and_extra_accept(network):
    ruleset = copy.deepcopy(EXAMPLE_RULESET)
    opcua = next(r for r in _rules(ruleset) if r.get("comment") == "conduit:opcua_sup_to_cell_pc")
    opcua["expr"][4]["match"]["right"] = {"set": [4840, 4841]}
    ruleset["nftables"].append({"rule": {"family": "inet", "table": "cobot_cell", "chain": "forward", "handle": 99,
                                         "comment": "temp debug", "expr": [{"accept": None}]}})
    [finding] = check_ruleset(network, ruleset)
    assert finding.level is Level.ERROR
    assert finding.value("conduits_drifted") == "opcua_sup_to_cell_pc"
    assert finding.value("extra_accepts") == "handle 99 comment 'temp debug' (accept)"


def test_policy_accept_and_missing_table(network):
    ruleset = copy.deepcopy(EXAMPLE_RULESET)
    next(i["chain"] for i in ruleset["nftables"] if "chain" in i)["policy"] = "accept"
    [finding] = check_ruleset(network, ruleset)
    assert finding.level is Level.ERROR and "forward policy is accept, not drop" in finding.message
    [finding] = check_ruleset(network, {"nftables": [{"metainfo": {}}]})
    assert finding.level is Level.ERROR and "table inet cobot_cell is not loaded" in finding.message
    assert finding.value("forward_policy") == "missing"


def test_not_nft_json_is_input_error(network):
    with pytest.raises(InputError, match=r"rules.json:1: expected the JSON of `nft -j list ruleset`, got invalid JSON"):
        check_ruleset(network, "{nope", "rules.json")
    with pytest.raises(InputError, match=r"nftables: expected the JSON"):
        check_ruleset(network, "[]", "rules.json")


def test_record_round_trip(network, tmp_path, fixed_now):
    findings = check_ruleset(network, EXAMPLE_RULESET)
    path = KeystoreLayout(tmp_path / "ks").network_check
    assert path == tmp_path / "ks" / ".cobot_security" / "network_check.json"
    record_network_check(path, findings, fixed_now)
    record = read_network_check(path)
    assert record.checked_at == fixed_now
    assert record.findings == tuple(findings)


def test_read_record_errors(tmp_path):
    with pytest.raises(InputError, match="expected a network check record"):
        read_network_check(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "checked_at": "2026-11-29T12:00:00", "findings": []}))
    with pytest.raises(InputError, match="checked_at: expected a UTC time with offset"):
        read_network_check(bad)


def test_cli_check_exit_codes(tmp_path, capsys):
    good = tmp_path / "rules.json"
    good.write_text(json.dumps(EXAMPLE_RULESET))
    record = tmp_path / "rec.json"
    assert main(["network", "check", "--ruleset-json", str(good), "--record", str(record)]) == 0
    assert "OK cobot_security/network_ruleset/gateway" in capsys.readouterr().out
    assert read_network_check(record).findings[0].level is Level.OK
    broken = copy.deepcopy(EXAMPLE_RULESET)
    next(i["chain"] for i in broken["nftables"] if "chain" in i)["policy"] = "accept"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    assert main(["network", "check", "--ruleset-json", str(bad), "--record", str(record)]) == 1
    assert read_network_check(record).findings[0].level is Level.ERROR
    bad.write_text("not json")
    assert main(["network", "check", "--ruleset-json", str(bad), "--record", str(record)]) == 2
