"""``cobot-security scan opcua|services``: audit OPC UA endpoints and controller service exposure.

Both scans refuse targets that are neither loopback nor named in the network configuration unless
``--allow-adhoc`` is given, bound every step with timeouts, and store their findings with the time
under the keystore (``--store``, the default when the keystore exists) for the health reporter.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.errors import InputError
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.network.load import load_network
from cobot_security.network.model import NetworkPolicy
from cobot_security.render import table
from cobot_security.resources import shipped_file
from cobot_security.scan.catalog import ServiceCatalog, load_service_catalog
from cobot_security.scan.results import store_scan_result
from cobot_security.scan.scanner import MAX_CONCURRENCY, MAX_RATE, ScanLimits
from cobot_security.scan.services import scan_services
from cobot_security.scan.targets import check_targets, read_configured_hosts
from cobot_security.status import Finding, Level, finding_to_json, worst

NETWORK_FILE = "policies/network.yaml"
CATALOG_FILE = "policies/controller_services.yaml"


def _add_common(parser: argparse.ArgumentParser, default_timeout: float) -> None:
    options.add_keystore(parser)
    parser.add_argument("--hosts-from", type=Path, action="append", default=None, metavar="FILE",
                        help=f"YAML naming the hosts that may be scanned (zones.*.hosts or hosts:); "
                        f"default: the package's {NETWORK_FILE} when present")
    parser.add_argument("--allow-adhoc", action="store_true",
                        help="also scan hosts not named in the configuration (use with care)")
    parser.add_argument("--timeout", type=float, default=default_timeout,
                        help=f"seconds per connection step (default {default_timeout:g})")
    parser.add_argument("--store", action=argparse.BooleanOptionalAction, default=None,
                        help="store the findings under <keystore>/.cobot_security/scans "
                        "(default: when the keystore exists)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``scan opcua`` and ``scan services``."""
    parser = subparsers.add_parser("scan", help=command_help("scan"))
    verbs = parser.add_subparsers(dest="scan_command", metavar="SCAN", required=True)
    opcua = verbs.add_parser("opcua", help="list an OPC UA server's endpoints and judge their security",
                             description="Exit 1 when an endpoint is insecure (ERROR finding).")
    opcua.add_argument("url", metavar="opc.tcp://HOST:PORT", help="the server's discovery URL")
    opcua.add_argument("--require-ca", action="store_true",
                       help="a self-signed server certificate is an error")
    opcua.add_argument("--unsafe-allow-sign-only", action="store_true",
                       help="accept Sign without encryption (warns on every use)")
    _add_common(opcua, 5.0)
    opcua.set_defaults(run=run_opcua)
    svc = verbs.add_parser("services", help="bounded TCP connect scan for cobot controller services",
                           description="Exit 1 when an unauthenticated service is reachable.")
    svc.add_argument("hosts", nargs="+", metavar="HOST")
    svc.add_argument("--catalog", type=Path, default=None, help=f"service catalog (default: {CATALOG_FILE})")
    svc.add_argument("--ports-from-catalog", action=argparse.BooleanOptionalAction, default=True,
                     help="scan every port of the catalog (default yes)")
    svc.add_argument("--ports", default="", help="extra comma-separated TCP ports")
    svc.add_argument("--concurrency", type=int, default=16,
                     help=f"simultaneous connections (max {MAX_CONCURRENCY})")
    svc.add_argument("--rate", type=float, default=50.0,
                     help=f"connection starts per second (max {MAX_RATE:g})")
    svc.add_argument("--network", type=Path, default=None, metavar="FILE",
                     help=f"compare open ports with the conduits of this network file (default: the "
                     f"package's {NETWORK_FILE} when present); its hosts may be scanned")
    svc.add_argument("--no-network", action="store_true",
                     help="judge open ports without the network file (no conduit comparison)")
    _add_common(svc, 2.0)
    svc.set_defaults(run=run_services)


def _configured_hosts(args: argparse.Namespace) -> frozenset[str]:
    files = list(args.hosts_from or [])
    if not files and shipped_file(NETWORK_FILE).exists():
        files.append(shipped_file(NETWORK_FILE))
    if getattr(args, "network", None) is not None and not getattr(args, "no_network", False):
        files.append(args.network)
    hosts: set[str] = set()
    for path in files:
        hosts |= read_configured_hosts(path)
    return frozenset(hosts)


def _finish(args: argparse.Namespace, kind: str, targets: Sequence[str], findings: Sequence[Finding]) -> int:
    """Print the findings, store them per target (subject ``target`` or ``target:port``), exit code."""
    now = utc_now()
    keystore = options.keystore_path(args)
    store = args.store if args.store is not None else keystore.is_dir()
    if args.format == "json":
        print(json.dumps([finding_to_json(f) for f in findings], indent=2))
    else:
        table(("LEVEL", "SUBJECT", "MESSAGE"), [(f.level.name, f.subject, f.message) for f in findings],
              colour=options.stdout_is_tty())
    if store:
        for target in targets:
            mine = [f for f in findings if f.subject == target or f.subject.startswith(target + ":")] \
                if len(targets) > 1 else list(findings)
            path = store_scan_result(KeystoreLayout(keystore).scans_dir, kind, target, mine, now)
            print(f"stored {path}", file=sys.stderr)
    return 1 if worst(f.level for f in findings) >= Level.ERROR else 0


def run_opcua(args: argparse.Namespace) -> int:
    """Audit one OPC UA server."""
    from cobot_security.scan import opcua  # asyncua is heavy: only this verb loads it

    host = opcua.opcua_host(args.url)
    check_targets([host], _configured_hosts(args), args.allow_adhoc)
    if args.unsafe_allow_sign_only:
        print("cobot-security scan opcua: warning: --unsafe-allow-sign-only accepts unencrypted traffic",
              file=sys.stderr)
    requirements = opcua.OpcUaRequirements(require_encrypt=not args.unsafe_allow_sign_only,
                                           require_ca=args.require_ca)
    findings = opcua.scan_opcua(args.url, utc_now(), requirements, args.timeout)
    return _finish(args, "opcua", [args.url], findings)


def _ports(args: argparse.Namespace, catalog: ServiceCatalog) -> list[int]:
    ports = set(catalog.tcp_ports) if args.ports_from_catalog else set()
    for text in filter(None, (p.strip() for p in args.ports.split(","))):
        if not text.isdigit():
            raise InputError(None, "--ports", "comma-separated port numbers", repr(text))
        ports.add(int(text))
    if not ports:
        raise InputError(None, "--ports", "at least one port (or --ports-from-catalog)", "none")
    return sorted(ports)


def _network(args: argparse.Namespace) -> NetworkPolicy | None:
    """The network file to compare with: ``--network``, else the shipped one when present; None with
    ``--no-network`` or when there is none.
    """
    if args.no_network:
        return None
    path = args.network
    if path is None:
        if not shipped_file(NETWORK_FILE).exists():
            return None
        path = shipped_file(NETWORK_FILE)
    # Domain ids only size the DDS (UDP) conduits, which a TCP scan does not compare: any will do.
    return load_network(path, default_domain_ids=(0,))


def run_services(args: argparse.Namespace) -> int:
    """Scan the given hosts for catalogued controller services."""
    catalog = load_service_catalog(args.catalog or shipped_file(CATALOG_FILE))
    limits = ScanLimits(args.concurrency, args.rate, args.timeout).validate()
    network = _network(args)
    check_targets(args.hosts, _configured_hosts(args), args.allow_adhoc)
    findings = scan_services(args.hosts, _ports(args, catalog), catalog, limits, network)
    return _finish(args, "services", list(dict.fromkeys(args.hosts)), findings)
