"""``cobot-security enclave create|list``: add one policy enclave to a keystore, or list them."""

from __future__ import annotations

import argparse
import sys

from cobot_security import render
from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.errors import InputError
from cobot_security.keystore.enclaves import EnclaveInfo
from cobot_security.keystore.store import Keystore
from cobot_security.names import NameContext, validate_enclave_path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``enclave`` subcommand group."""
    parser = subparsers.add_parser("enclave", help=command_help("enclave"),
                                   description="Create or list the enclaves of a keystore.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    create = verbs.add_parser(
        "create",
        help="issue an enclave named in the policy",
        description=(
            "Issue a new key pair and certificate for ENCLAVE and sign its permissions, compiled "
            "from the policy entry of that name. The enclave is staged and swapped in atomically; an "
            "existing enclave is replaced only with --force."
        ),
    )
    create.add_argument("enclave", metavar="ENCLAVE", help="enclave path as in the policy, e.g. /cell/arm_driver")
    options.add_keystore(create)
    options.add_policy(create)
    options.add_passphrase(create)
    create.add_argument("--force", action="store_true", help="replace an existing enclave")
    create.set_defaults(run=run_create)

    listing = verbs.add_parser("list", help="list enclaves with their certificate validity",
                               description="List the keystore's enclaves, certificate validity and missing files.")
    options.add_keystore(listing)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=run_list)


def run_create(args: argparse.Namespace) -> int:
    """Create (or with --force re-create) one enclave."""
    path = validate_enclave_path(args.enclave, NameContext(field="ENCLAVE"))
    root = options.keystore_path(args)
    remembered = options.read_policy_for(args, root)
    policy = remembered.policy
    enclave = policy.enclave(path)
    if enclave is None:
        raise InputError(policy.source, "enclaves", f"an entry for enclave {path} (known: "
                         f"{', '.join(e.path for e in policy.enclaves)})", "none")
    keystore = Keystore.open(root, passphrase=options.passphrase(args), remembered=remembered)
    info = keystore.create_enclave(enclave, policy, utc_now(), force=args.force)
    print(f"created enclave {info.path}: certificate serial {info.serial}, valid until {info.not_after.isoformat()}")
    return 0


def _files(info: EnclaveInfo) -> str:
    if info.files_ok:
        return "ok"
    return "; ".join(([f"missing {','.join(info.missing)}"] if info.missing else []) + list(info.refused))


def run_list(args: argparse.Namespace) -> int:
    """Print the enclaves of the keystore; exit 1 when one cannot be read or holds a refused file.

    One bad enclave never hides the others: each problem is one line on stderr.
    """
    keystore = Keystore.open(options.keystore_path(args))
    enclaves, problems = keystore.list_enclaves(), keystore.enclave_problems()
    if args.json:
        print(render.to_json(enclaves))
    else:
        rows = [(e.path, e.not_before.isoformat(), e.not_after.isoformat(), e.serial[:16], _files(e))
                for e in enclaves]
        render.table(("enclave", "not_before", "not_after", "serial", "files"), rows)
    for problem in problems:
        print(f"cobot-security enclave list: {problem.directory / 'cert.pem'}: {problem.problem}", file=sys.stderr)
    return 1 if problems or any(e.refused for e in enclaves) else 0
