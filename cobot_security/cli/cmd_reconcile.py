"""``cobot-security reconcile``: bring a keystore in line with the policy (the keystore_manager's twin)."""

from __future__ import annotations

import argparse

from cobot_security import render
from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.keystore.reconcile import (
    ReconcilePlan,
    apply_reconcile,
    plan_reconcile,
)
from cobot_security.keystore.store import Keystore


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``reconcile`` subcommand."""
    parser = subparsers.add_parser(
        "reconcile",
        help=command_help("reconcile"),
        description=(
            "Compare the keystore with the policy and apply the smallest set of changes: create "
            "missing enclaves, re-sign permissions whose policy entry changed, re-issue a due CRL, "
            "and (with --rotate-due) rotate certificates inside their renew window. Enclaves the "
            "policy no longer names are listed as orphans, never removed."
        ),
    )
    options.add_keystore(parser)
    options.add_policy(parser)
    options.add_passphrase(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the plan and write nothing")
    parser.add_argument("--rotate-due", action="store_true",
                        help="also rotate certificates inside their renew window (otherwise only reported)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON instead of a table")
    parser.set_defaults(run=run)


def _print_plan(plan: ReconcilePlan, as_json: bool) -> None:
    if as_json:
        print(render.to_json(plan.as_dict()))
        return
    if plan.empty:
        print("keystore matches the policy: nothing to do")
        return
    render.table(("action", "enclave", "reason"), [(a.kind, a.enclave, a.reason) for a in plan.actions])


def run(args: argparse.Namespace) -> int:
    """Print the plan; unless --dry-run, apply it and print what changed."""
    root = options.keystore_path(args)
    remembered = options.read_policy_for(args, root)
    policy = remembered.policy
    now = utc_now()
    keystore = Keystore.open(root, passphrase=options.passphrase(args), remembered=remembered)
    plan = plan_reconcile(keystore, policy, now)
    _print_plan(plan, args.json)
    if args.dry_run or plan.empty:
        return 0
    outcome = apply_reconcile(keystore, policy, plan, now, allow_rotate=args.rotate_due)
    for label, names in (("created", outcome.created), ("re-signed", outcome.resigned),
                         ("rotated", outcome.rotated), ("due, not rotated (pass --rotate-due)", outcome.deferred),
                         ("orphan, not removed", outcome.orphans)):
        if names:
            print(f"{label}: {', '.join(names)}")
    if outcome.crl_refreshed:
        print("CRL re-issued")
    for subject, message in outcome.failures:
        print(f"failed: {subject}: {message}")
    return 1 if outcome.failures else 0
