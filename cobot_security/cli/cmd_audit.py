"""``cobot-security audit-log verify|show``: check or print the keystore's tamper-evident audit log."""

from __future__ import annotations

import argparse
import sys

from cobot_security import render
from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.keystore.audit import read_audit_log, verify_audit_log
from cobot_security.keystore.layout import KeystoreLayout


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``audit-log`` group."""
    parser = subparsers.add_parser(
        "audit-log", help=command_help("audit-log"),
        description=("Every mutating keystore operation (init, issue, rotate, revoke, CRL refresh, CA "
                     "renewal) appends a hash-chained, HMAC-signed record to .cobot_security/audit.log."),
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    verify = verbs.add_parser(
        "verify", help="check every record's MAC and chain (exit 1 on the first bad one)",
        description=("Check each record's HMAC (key private/audit.key), sequence number and link to the "
                     "previous line, and that no tail was cut off. Exit 0 when intact; exit 1 naming the "
                     "first bad line and what is wrong."),
    )
    options.add_keystore(verify)
    verify.set_defaults(run=run_verify)
    show = verbs.add_parser("show", help="print the audit records (unverified; run verify first)",
                            description="Print the audit records in order; this does not verify them.")
    options.add_keystore(show)
    show.add_argument("--json", action="store_true", help="print JSON lines' records as one JSON list")
    show.set_defaults(run=run_show)


def run_verify(args: argparse.Namespace) -> int:
    """Verify the audit log; 1 when it is not intact."""
    layout = KeystoreLayout(options.keystore_path(args))
    result = verify_audit_log(layout)
    if result.ok:
        print(f"audit log intact: {result.records} records")
        return 0
    where = f"line {result.first_bad}: " if result.first_bad is not None else ""
    print(f"cobot-security audit-log: {layout.audit_log}: {where}{result.problem} "
          f"({result.records} records verified before it)", file=sys.stderr)
    return 1


def run_show(args: argparse.Namespace) -> int:
    """Print the records."""
    records = read_audit_log(KeystoreLayout(options.keystore_path(args)))
    if args.json:
        print(render.to_json([r.to_json() for r in records]))
        return 0
    render.table(("seq", "time", "event", "subject", "details"),
                 [(r.seq, r.time, r.event, r.subject, " ".join(f"{k}={v}" for k, v in sorted(r.details.items())))
                  for r in records])
    return 0
