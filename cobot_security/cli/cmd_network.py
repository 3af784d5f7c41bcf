"""``cobot-security network render|check``: zones and conduits → gateway ruleset, ROS env, Cyclone
snippets; and the live ruleset compared with them (exit 1 on any problem)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cobot_security.atomic import write_bytes_atomic
from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.network.check import (
    check_ruleset,
    read_live_ruleset,
    read_ruleset_file,
    record_network_check,
)
from cobot_security.network.load import load_network
from cobot_security.network.model import NetworkPolicy
from cobot_security.network.render import FORMATS, render_files
from cobot_security.resources import shipped_file
from cobot_security.status import Level


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``network render`` and ``network check``."""
    parser = subparsers.add_parser("network", help=command_help("network"),
                                   description="Cell segmentation from policies/network.yaml (default deny).")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    render = verbs.add_parser("render", help="render the nftables ruleset, ROS env and Cyclone DDS snippets",
                              description="Deterministic output; with -o the files are written into DIR.")
    check = verbs.add_parser("check", help="compare the live nftables ruleset with the conduits (exit 1 on drift)",
                             description="Reads `nft -j list ruleset` (or --ruleset-json) and reports missing "
                             "conduits, extra accepts and a forward policy other than drop.")
    for sub in (render, check):
        sub.add_argument("--network", type=Path, default=None,
                         help="zones and conduits YAML (default: the package's policies/network.yaml)")
        options.add_policy(sub)
    render.add_argument("--format", choices=FORMATS, default="all", help="what to render (default all)")
    render.add_argument("-o", "--output", type=Path, default=None, metavar="DIR",
                        help="write the files into DIR instead of printing them")
    render.set_defaults(run=run_render)
    source = check.add_mutually_exclusive_group()
    source.add_argument("--ruleset-json", type=Path, default=None, metavar="FILE",
                        help="read the ruleset from FILE (output of `nft -j list ruleset`)")
    source.add_argument("--netns", default=None, metavar="NAME", help="read the ruleset inside network namespace NAME")
    options.add_keystore(check)
    check.add_argument("--record", type=Path, default=None, metavar="FILE",
                       help="store the finding here (default <keystore>/.cobot_security/network_check.json "
                       "when the keystore exists)")
    check.set_defaults(run=run_check)


def _network(args: argparse.Namespace) -> NetworkPolicy:
    domains = options.read_policy(args).domain_ids if args.policy is not None else None
    return load_network(args.network or shipped_file("policies/network.yaml"), domains)


def run_render(args: argparse.Namespace) -> int:
    """Render and print (or write into -o DIR)."""
    files = render_files(_network(args), args.format)
    for name, text in files.items():
        if args.output is None:
            if len(files) > 1:
                print(f"# ==> {name} <==")
            print(text, end="")
        else:
            path = args.output / name
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, text.encode(), 0o644)
            print(path)
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Check the ruleset, print the finding, record it; exit 1 unless OK."""
    network = _network(args)
    if args.ruleset_json is not None:
        text, evidence = read_ruleset_file(args.ruleset_json), f"file {args.ruleset_json}"
    else:
        text = read_live_ruleset(args.netns)
        evidence = "nft -j list ruleset" + (f" in netns {args.netns}" if args.netns else "")
    findings = check_ruleset(network, text, evidence)
    for finding in findings:
        print(f"{finding.level.name} {finding.name}: {finding.message}")
    record = args.record
    if record is None and options.keystore_path(args).is_dir():
        record = KeystoreLayout(options.keystore_path(args)).network_check
    if record is not None:
        record_network_check(record, findings, utc_now())
    return 0 if all(f.level is Level.OK for f in findings) else 1
