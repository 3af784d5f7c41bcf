"""``cobot-security init``: create a keystore (CAs, governance, every enclave) from the policy."""

from __future__ import annotations

import argparse

from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.keystore.store import init_keystore


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``init`` subcommand."""
    parser = subparsers.add_parser(
        "init",
        help=command_help("init"),
        description=(
            "Create a keystore that rmw implementations load as-is: identity and permissions CAs "
            "(public/, private/), signed governance, and one enclave (key, certificate, signed "
            "permissions) per policy enclave. The keystore is built aside and moved into place, so "
            "an interrupted run leaves the previous keystore untouched. An existing keystore is "
            "replaced only with --force (the old one is kept as a .bak-<time> sibling)."
        ),
    )
    options.add_keystore(parser)
    options.add_policy(parser)
    options.add_passphrase(parser, creating=True)
    parser.add_argument("--single-ca", action="store_true",
                        help="one CA for identity and permissions, as sros2 does (default: two)")
    parser.add_argument("--no-enclaves", action="store_true", help="create only the CAs and governance")
    parser.add_argument("--force", action="store_true", help="replace an existing keystore")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Create the keystore and print what was made."""
    root = options.keystore_path(args)
    remembered = options.read_policy_for(args, root)
    policy = remembered.policy
    keystore = init_keystore(
        root,
        policy,
        utc_now(),
        passphrase=options.passphrase(args, confirm=True),
        single_ca=args.single_ca,
        force=args.force,
        create_enclaves=not args.no_enclaves,
        remembered=remembered,
    )
    enclaves = keystore.list_enclaves()
    print(f"created keystore {root} for '{policy.name}' (domain {', '.join(map(str, policy.domain_ids))}): "
          f"{len(enclaves)} enclave(s)")
    return 0
