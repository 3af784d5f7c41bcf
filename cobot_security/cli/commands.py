"""The catalog of ``cobot-security`` commands: name, the module that implements it, its help line.

``cli.main`` lists every command from this table (``--help``, "invalid choice") and imports only the
module of the command being run, so that starting one command does not pay for the imports of all
the others (issue 11).  Each ``cmd_*`` module takes its help line from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One top-level command; ``module`` is the ``cobot_security.cli`` module that registers it."""

    name: str
    module: str
    help: str


#: In the order ``--help`` lists them; commands of one module stay together.
COMMANDS: tuple[Command, ...] = (
    Command("demo", "cmd_demo", "run the secure-workcell demo (keystore, proof, live cell, scenario, report)"),
    Command("init", "cmd_init", "create a keystore from the workcell policy"),
    Command("enclave", "cmd_enclave", "create or list enclaves"),
    Command("policy", "cmd_policy", "validate, lint, import, learn or diff workcell policies"),
    Command("verify", "cmd_verify", "prove the keystore on real middlewares (Cyclone DDS, Fast DDS, Zenoh)"),
    Command("render", "cmd_render", "render middleware configuration from the policy and keystore"),
    Command("posture", "cmd_posture", "evaluate the IEC 62443 posture controls offline"),
    Command("reconcile", "cmd_reconcile", "plan and apply the changes that make the keystore match the policy"),
    Command("rotate", "cmd_rotate", "rotate enclave keys and certificates"),
    Command("rollback", "cmd_rotate", "restore an archived enclave version"),
    Command("history", "cmd_rotate", "list archived versions of an enclave"),
    Command("ca", "cmd_rotate", "renew the CAs or roll them over to new keys"),
    Command("revoke", "cmd_revoke", "revoke an enclave's certificate (every peer refuses it)"),
    Command("crl", "cmd_revoke", "refresh or show the certificate revocation list"),
    Command("host", "cmd_host", "keystores of the hosts of a multi-host cell (docs/deployment.md)"),
    Command("audit-log", "cmd_audit", "verify or show the keystore's audit log"),
    Command("network", "cmd_network", "zones and conduits: render the gateway firewall, check it"),
    Command("scan", "cmd_scan", "audit OPC UA endpoints and controller service exposure"),
    Command("incident", "cmd_incident", "list, close, export and drill security incidents"),
)


def command_help(name: str) -> str:
    """The help line of command ``name`` (a KeyError names a command missing from the catalog)."""
    return next(c.help for c in COMMANDS if c.name == name)
