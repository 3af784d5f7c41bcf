"""``cobot-security policy diff``: the DDS grants a policy change adds and removes, per enclave."""

from __future__ import annotations

import argparse
from pathlib import Path

from cobot_security import render
from cobot_security.cli import options
from cobot_security.clock import utc_now
from cobot_security.keystore.reconcile import CREATE, ORPHAN, RESIGN, plan_reconcile
from cobot_security.keystore.store import Keystore
from cobot_security.policy.diff import PolicyDiff, diff_policies
from cobot_security.policy.load import load_policy

FORMATS = ("table", "json", "markdown")


def register(verbs: argparse._SubParsersAction) -> None:
    """Add ``policy diff``."""
    diff = verbs.add_parser(
        "diff", help="show the DDS grants a policy change adds and removes",
        description="Compile OLD and NEW and list, per enclave, the DDS grants (mangled topic, "
        "service and action names, builtins included) NEW adds and removes. With --keystore, also "
        "which enclaves `reconcile` would create or re-sign. Exit 1 with --fail-on-widen when NEW "
        "grants anything OLD did not (a CI gate on privilege growth).")
    diff.add_argument("old", type=Path, metavar="OLD")
    diff.add_argument("new", type=Path, metavar="NEW")
    options.add_keystore(diff)
    diff.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    diff.add_argument("--fail-on-widen", action="store_true", help="exit 1 when NEW grants more than OLD")
    diff.set_defaults(run=run_diff)


def _rows(result: PolicyDiff) -> list[tuple[str, ...]]:
    return [(c.enclave, "+" if c.change == "added" else "-", c.direction, c.kind, c.ros_name, c.dds_name,
             "widens" if c.widens else "") for c in result.changes]


_HEADERS = ("enclave", "+/-", "direction", "kind", "ros name", "dds name", "")


def _markdown(result: PolicyDiff, resign: list[tuple[str, str]]) -> str:
    lines = ["## Policy diff", ""]
    if result.domains_added or result.domains_removed:
        lines += [f"Domains added: {list(result.domains_added)}, removed: {list(result.domains_removed)}", ""]
    for enclave in result.enclaves:
        if enclave.status == "unchanged":
            continue
        lines += [f"### `{enclave.enclave}` ({enclave.status})", "",
                  "| +/- | direction | kind | ROS name | DDS name | widens |", "|---|---|---|---|---|---|"]
        lines += [f"| {'+' if c.change == 'added' else '-'} | {c.direction} | {c.kind} | `{c.ros_name}` "
                  f"| `{c.dds_name}` | {'**yes**' if c.widens else ''} |" for c in enclave.changes]
        lines.append("")
    if result.empty:
        lines += ["No grant changes.", ""]
    lines.append(f"**Privilege:** {'widens' if result.widens else 'does not widen'}.")
    if resign:
        lines += ["", "Reconcile would: " + ", ".join(f"{kind} `{enclave}`" for kind, enclave in resign) + "."]
    return "\n".join(lines)


def _summary(result: PolicyDiff) -> str:
    changed = [e for e in result.enclaves if e.status != "unchanged"]
    added = sum(1 for c in result.changes if c.change == "added")
    removed = len(result.changes) - added
    return (f"{len(changed)} enclave(s) changed: {added} grant(s) added, {removed} removed; "
            f"privilege {'WIDENS' if result.widens else 'does not widen'}")


def run_diff(args: argparse.Namespace) -> int:
    """Print the diff; exit 1 on widening when --fail-on-widen."""
    old, new = load_policy(args.old), load_policy(args.new)
    result = diff_policies(old, new)
    resign: list[tuple[str, str]] = []
    if args.keystore is not None:
        plan = plan_reconcile(Keystore.open(options.keystore_path(args)), new, utc_now())
        resign = [(a.kind, a.enclave) for a in plan.actions if a.kind in (CREATE, RESIGN, ORPHAN)]
    if args.format == "json":
        body = result.as_dict()
        if args.keystore is not None:
            body["reconcile"] = [{"action": kind, "enclave": enclave} for kind, enclave in resign]
        print(render.to_json(body))
    elif args.format == "markdown":
        print(_markdown(result, resign))
    else:
        if result.domains_added or result.domains_removed:
            print(f"domains added: {list(result.domains_added)}, removed: {list(result.domains_removed)}")
        if result.changes:
            render.table(_HEADERS, _rows(result))
        print(_summary(result))
        if args.keystore is not None:
            print("reconcile would: " + (", ".join(f"{k} {e}" for k, e in resign) or "re-sign nothing"))
    return 1 if args.fail_on_widen and result.widens else 0
