"""``cobot-security revoke`` and ``cobot-security crl refresh|show``: revoke enclaves, keep the CRL fresh."""

from __future__ import annotations

import argparse

from cobot_security import render
from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.keystore.crl import REASONS
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import (
    crl_status,
    read_revoked,
    refresh_crl,
    revoke_enclave,
)
from cobot_security.keystore.store import Keystore
from cobot_security.names import NameContext, validate_enclave_path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``revoke`` command and the ``crl`` group."""
    revoke = subparsers.add_parser(
        "revoke",
        help=command_help("revoke"),
        description=(
            "Add ENCLAVE's current certificate to the identity CA's revocation list (public/crl.pem, "
            "linked as crl.pem into every enclave and loaded by rmw), re-sign the keystore's integrity "
            "manifest and record the revocation in the audit log. The enclave's files stay on disk. "
            "Running nodes pick the new CRL up when they restart."
        ),
    )
    revoke.add_argument("enclave", metavar="ENCLAVE", help="enclave path, e.g. /cell/arm_driver")
    revoke.add_argument("--reason", required=True, choices=sorted(REASONS),
                        help="RFC 5280 reason code written into the CRL entry")
    revoke.add_argument("--note", default="", help="free text kept in revoked.json and the audit log "
                                                   "(no secrets)")
    options.add_keystore(revoke)
    options.add_policy(revoke)
    options.add_passphrase(revoke)
    revoke.set_defaults(run=run_revoke)

    crl = subparsers.add_parser("crl", help=command_help("crl"),
                                description="Re-issue or inspect the identity CA's CRL (public/crl.pem).")
    verbs = crl.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    refresh = verbs.add_parser(
        "refresh",
        help="re-issue the CRL when its next update is near",
        description=(
            "Re-issue public/crl.pem with the same entries when it is in the last third of its "
            "validity (or with --force). DDS participants refuse to start with a CRL past its next "
            "update, so run this on a timer (keystore_manager does)."
        ),
    )
    refresh.add_argument("--force", action="store_true", help="re-issue even when not due")
    options.add_keystore(refresh)
    options.add_policy(refresh)
    options.add_passphrase(refresh)
    refresh.set_defaults(run=run_refresh)
    show = verbs.add_parser("show", help="print the CRL's validity and revoked enclaves",
                            description=("Print the CRL's number, validity, whether it is due, and the "
                                         "revoked enclaves."))
    options.add_keystore(show)
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(run=run_show)


def run_revoke(args: argparse.Namespace) -> int:
    """Revoke one enclave."""
    path = validate_enclave_path(args.enclave, NameContext(field="ENCLAVE"))
    root = options.keystore_path(args)
    remembered = options.read_policy_for(args, root)
    keystore = Keystore.open(root, passphrase=options.passphrase(args), remembered=remembered)
    entry = revoke_enclave(keystore, path, args.reason, utc_now(), remembered.policy, note=args.note)
    print(f"revoked enclave {entry.enclave}: certificate serial {entry.serial} ({entry.reason}); "
          "restart running nodes so that they load the new CRL")
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    """Re-issue the CRL when due (or forced)."""
    root = options.keystore_path(args)
    remembered = options.read_policy_for(args, root)
    policy = remembered.policy
    keystore = Keystore.open(root, passphrase=options.passphrase(args), remembered=remembered)
    now = utc_now()
    refreshed = refresh_crl(keystore, now, policy, force=args.force)
    status = crl_status(keystore.layout, now)
    verb = "re-issued" if refreshed else "not due; kept"
    print(f"CRL {verb}: number {status.number}, next update {status.next_update}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print the CRL status and the revoked entries."""
    layout = KeystoreLayout(Keystore.open(options.keystore_path(args)).layout.root)
    status = crl_status(layout, utc_now())
    entries = read_revoked(layout)
    if args.json:
        print(render.to_json({"crl": status, "revoked": [e.to_json() for e in entries]}))
        return 0
    if not status.present:
        print("no CRL (public/crl.pem): revocation is not possible; run cobot-security crl refresh --force")
    else:
        print(f"CRL number {status.number}: last update {status.last_update}, next update {status.next_update}"
              f"{' (EXPIRED)' if status.expired else ' (refresh due)' if status.due else ''}, "
              f"{status.revoked} revoked")
    render.table(("enclave", "serial", "reason", "revoked_at", "note"),
                 [(e.enclave, e.serial[:16], e.reason, e.revoked_at.isoformat(), e.note) for e in entries])
    return 0
