"""``cobot-security rotate|rollback|history|ca``: rotate enclaves, restore versions, renew or roll CAs."""

from __future__ import annotations

import argparse
from pathlib import Path

from cobot_security import render
from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.keystore.ca import (
    CA_KINDS,
    renew_ca,
    rollover_plan,
    stage_rollover,
    swap_keystores,
)
from cobot_security.keystore.history import list_history
from cobot_security.keystore.rollback import rollback_enclave
from cobot_security.keystore.rotation import plan_rotation, rotate_enclaves
from cobot_security.keystore.store import Keystore
from cobot_security.names import NameContext, validate_enclave_path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``rotate``, ``rollback``, ``history`` and ``ca`` subcommands."""
    rotate = subparsers.add_parser(
        "rotate", help=command_help("rotate"),
        description="Re-issue enclaves (new key, certificate, signed permissions), archiving the old "
        "version. Without a selector: every enclave that is due, missing or whose policy changed.")
    pick = rotate.add_mutually_exclusive_group()
    pick.add_argument("--enclave", action="append", metavar="PATH", help="rotate this enclave (repeatable)")
    pick.add_argument("--due", action="store_true", help="only enclaves inside their renew window")
    pick.add_argument("--all", action="store_true", help="every enclave of the policy")
    rotate.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    _common(rotate)
    rotate.set_defaults(run=run_rotate)

    rollback = subparsers.add_parser("rollback", help=command_help("rollback"),
                                     description="Restore the newest (or --version) archived version of "
                                     "ENCLAVE that is still valid and chains to the current identity CA.")
    rollback.add_argument("enclave", metavar="ENCLAVE")
    rollback.add_argument("--version", dest="version_name", metavar="V", help="version name from `history`")
    _common(rollback, policy=False)
    rollback.set_defaults(run=run_rollback)

    history = subparsers.add_parser("history", help=command_help("history"),
                                    description="List the archived versions of ENCLAVE, newest first.")
    history.add_argument("enclave", metavar="ENCLAVE")
    options.add_keystore(history)
    history.set_defaults(run=run_history)

    ca = subparsers.add_parser("ca", help=command_help("ca"),
                               description="CA renewal (same key, zero downtime) or rollover (new key).")
    verbs = ca.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    renew = verbs.add_parser("renew", help="re-issue CA certificates with the same key",
                             description="Re-issue the CA certificates with the same key and subject and "
                             "a new validity; permissions are signed again. Default: both CAs.")
    renew.add_argument("--identity", action="store_true", help="renew the identity CA")
    renew.add_argument("--permissions", action="store_true", help="renew the permissions CA")
    _common(renew)
    renew.set_defaults(run=run_ca_renew)
    rollover = verbs.add_parser("rollover", help="switch the cell to new CA keys (compromise)",
                                description="Stage a complete new keystore, print the plan, or swap it in.")
    step = rollover.add_mutually_exclusive_group(required=True)
    step.add_argument("--stage", type=Path, metavar="DIR", help="build the new keystore in DIR")
    step.add_argument("--swap", type=Path, metavar="DIR", help="swap the staged keystore DIR in")
    step.add_argument("--plan", action="store_true", help="print the rollover steps")
    rollover.add_argument("--staged", type=Path, metavar="DIR", default=None, help="staged DIR named by --plan")
    _common(rollover)
    rollover.set_defaults(run=run_ca_rollover)


def _common(parser: argparse.ArgumentParser, policy: bool = True) -> None:
    options.add_keystore(parser)
    if policy:
        options.add_policy(parser)
    options.add_passphrase(parser)


def run_rotate(args: argparse.Namespace) -> int:
    """Plan (and unless --dry-run, execute) a rotation."""
    root = options.keystore_path(args)
    remembered = options.read_policy_for(args, root)
    policy = remembered.policy
    now = utc_now()
    paths = [validate_enclave_path(p, NameContext(field="--enclave")) for p in args.enclave or ()]
    keystore = Keystore.open(root, passphrase=options.passphrase(args), remembered=remembered)
    items = plan_rotation(keystore, policy, now, enclaves=paths or None, due_only=args.due, all=args.all)
    render.table(("enclave", "reason", "not_after", "days_left"),
                 [(i.enclave, i.reason, i.not_after.isoformat() if i.not_after else "-",
                   "-" if i.days_left is None else i.days_left) for i in items])
    if args.dry_run or not items:
        print(f"{len(items)} enclave(s) to rotate" + (" (dry run: nothing changed)" if args.dry_run else ""))
        return 0
    results = rotate_enclaves(keystore, policy, items, now)
    for result in results:
        print(f"rotated {result.enclave}: serial {result.new_serial[:16]}, valid until "
              f"{result.not_after.isoformat()} (previous archived as {result.archived or '-'})")
    print("restart the nodes of these enclaves to load their new identities")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    """Restore one archived enclave version."""
    path = validate_enclave_path(args.enclave, NameContext(field="ENCLAVE"))
    keystore = Keystore.open(options.keystore_path(args), passphrase=options.passphrase(args))
    version = rollback_enclave(keystore, path, utc_now(), args.version_name)
    print(f"rolled back {path} to version {version.version} (serial {version.serial[:16]}); restart its node")
    return 0


def run_history(args: argparse.Namespace) -> int:
    """List archived versions of one enclave."""
    path = validate_enclave_path(args.enclave, NameContext(field="ENCLAVE"))
    keystore = Keystore.open(options.keystore_path(args))
    render.table(("version", "serial", "not_before", "not_after"),
                 [(v.version, v.serial[:16], v.not_before.isoformat(), v.not_after.isoformat())
                  for v in list_history(keystore.layout, path)])
    return 0


def run_ca_renew(args: argparse.Namespace) -> int:
    """Renew the chosen CA certificates."""
    which = tuple(k for k in CA_KINDS if getattr(args, k)) or CA_KINDS
    keystore = Keystore.open(options.keystore_path(args), passphrase=options.passphrase(args))
    for r in renew_ca(keystore, options.read_policy(args), utc_now(), which):
        print(f"renewed {r.which} CA: serial {r.old_serial[:16]} -> {r.new_serial[:16]}, valid until "
              f"{r.not_after.isoformat()}" + (f", {r.resigned} documents re-signed" if r.resigned else ""))
    return 0


def run_ca_rollover(args: argparse.Namespace) -> int:
    """Stage, plan or swap a CA key rollover."""
    root = options.keystore_path(args)
    if args.swap is not None:
        backup = swap_keystores(root, args.swap, utc_now())
        print(f"swapped in the new keystore at {root}; old one kept at {backup}; start all nodes, then verify")
        return 0
    policy = options.read_policy(args)
    if args.stage is not None:
        stage_rollover(root, policy, utc_now(), args.stage, passphrase=options.passphrase(args))
        print(f"staged a new keystore at {args.stage}")
    staged = args.stage or args.staged or root.with_name(root.name + ".rollover")
    for line in rollover_plan(root, staged, policy):
        print(line)
    return 0
