"""``cobot-security render zenoh``: rmw_zenoh router and session configurations from the policy and the keystore."""

from __future__ import annotations

import argparse
from pathlib import Path

from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.errors import InputError
from cobot_security.keystore.store import Keystore
from cobot_security.middleware.zenoh_render import DEFAULT_CONNECT, DEFAULT_LISTEN, default_zenoh_dir, render_zenoh


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``render zenoh``."""
    parser = subparsers.add_parser("render", help=command_help("render"),
                                   description="Configuration for middlewares not secured by DDS permissions.")
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    zenoh = targets.add_parser(
        "zenoh", help="rmw_zenoh router + one session config per enclave (mutual TLS, access control)",
        description=(
            "Write router.json5 (TLS only, client certificates from the identity CA required, access "
            "control allowing exactly the policy's grants as rmw_zenoh key expressions, default deny), "
            "router/{cert,key}.pem issued by the identity CA, and sessions/<enclave>.json5 (client of the "
            "router with the enclave's certificate) for ZENOH_ROUTER_CONFIG_URI / ZENOH_SESSION_CONFIG_URI. "
            "The directory is replaced whole. Needs the identity CA key."),
    )
    options.add_keystore(zenoh)
    options.add_policy(zenoh)
    options.add_passphrase(zenoh)
    zenoh.add_argument("-o", "--output", type=Path, default=None, metavar="DIR",
                       help="output directory (default <keystore>/zenoh, where verify looks)")
    zenoh.add_argument("--listen", default=DEFAULT_LISTEN, metavar="ENDPOINT",
                       help=f"router listen endpoint (default {DEFAULT_LISTEN})")
    zenoh.add_argument("--connect", default=DEFAULT_CONNECT, metavar="ENDPOINT",
                       help=f"endpoint the sessions connect to (default {DEFAULT_CONNECT})")
    zenoh.set_defaults(run=run_zenoh)


def run_zenoh(args: argparse.Namespace) -> int:
    """Render and say where the files are."""
    policy = options.read_policy(args)
    root = options.keystore_path(args)
    for flag, endpoint in (("--listen", args.listen), ("--connect", args.connect)):
        if not endpoint.startswith("tls/"):
            raise InputError(None, flag, "a TLS endpoint like tls/[::]:7447 (the router accepts TLS only)",
                             repr(endpoint))
    out = args.output if args.output is not None else default_zenoh_dir(root)
    layout = render_zenoh(Keystore.open(root, passphrase=options.passphrase(args)), policy, out, utc_now(),
                          listen=args.listen, connect=args.connect)
    print(f"router:   {layout.router_config}  (ZENOH_ROUTER_CONFIG_URI)")
    for enclave in policy.enclaves:
        print(f"{enclave.path}: {layout.session_config(enclave.path)}  (ZENOH_SESSION_CONFIG_URI)")
    return 0
