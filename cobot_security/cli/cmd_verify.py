"""``cobot-security verify``: prove the keystore on real middlewares (Cyclone DDS, Fast DDS, Zenoh)."""

from __future__ import annotations

import argparse

from cobot_security import render
from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.dds.cross_vendor import CrossVendorResult, measure_cross_vendor
from cobot_security.dds.report_text import MIDDLEWARE_NAMES, format_matrix, format_report
from cobot_security.dds.runner import installed_middlewares
from cobot_security.dds.verify import VerifyReport, run_self_test, verify_keystore
from cobot_security.errors import InputError
from cobot_security.keystore.evidence import record_verify_result
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.store import Keystore
from cobot_security.middleware.zenoh_render import default_zenoh_dir, render_zenoh
from cobot_security.policy.model import CYCLONEDDS, FASTDDS, MIDDLEWARES, ZENOH


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``verify`` subcommand."""
    parser = subparsers.add_parser(
        "verify",
        help=command_help("verify"),
        description=(
            "Run one plan on each middleware: one participant (DDS) or session (Zenoh) per enclave, in "
            "its own process, loading the enclave's files as the middleware's rmw does, and check that "
            "every granted flow delivers, that a sample of ungranted writers and readers is refused, "
            "that intruders (a foreign-CA identity, a participant without security) and revoked "
            "identities hear nothing and are heard by none. Zenoh is proven with the configuration of "
            "'render zenoh' (rendered first when absent). With two DDS vendors, the cross-vendor "
            "exchange is measured and reported (a finding, not a pass/fail). Exit 1 on any false "
            "allow or false deny. Everything stays on loopback."
        ),
    )
    options.add_keystore(parser)
    options.add_policy(parser)
    options.add_passphrase(parser)
    parser.add_argument("--middleware", choices=(*MIDDLEWARES, "all"), default=None,
                        help="middleware to prove (default: every middleware installed here)")
    parser.add_argument("--domain-id", type=int, default=None,
                        help="domain to run the proof on (default: the policy's first domain)")
    parser.add_argument("--denied-sample", type=int, default=3, metavar="N",
                        help="ungranted topics tried per enclave, for writing and for reading (default 3)")
    parser.add_argument("--no-intruders", action="store_true", help="skip the foreign-CA and unsecured intruders")
    parser.add_argument("--no-cross-vendor", action="store_true",
                        help="skip the Fast DDS / Cyclone DDS cross-vendor measurement")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for granted flows (default 60)")
    parser.add_argument("--details", action="store_true", help="print every check, not the per-enclave summary")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("--self-test", action="store_true",
                        help="ignore --policy/--keystore: prove on a throwaway keystore (three enclaves and a "
                        "revoked one) that this machine's middlewares load and enforce security (exit 1 if not)")
    parser.set_defaults(run=run)


def _selected(args: argparse.Namespace) -> tuple[str, ...]:
    if args.middleware == "all":
        return MIDDLEWARES
    if args.middleware is not None:
        return (args.middleware,)
    found = installed_middlewares()
    if not found:
        raise InputError(None, "--middleware", "a middleware installed here (scripts/setup.sh installs all three)",
                         "none installed")
    return found


def _prove(args: argparse.Namespace,
           middlewares: tuple[str, ...]) -> tuple[list[VerifyReport], list[CrossVendorResult]]:
    now = utc_now()
    if args.self_test:
        domain = 230 if args.domain_id is None else args.domain_id
        return [run_self_test(now, domain_id=domain, timeout_s=args.timeout, middleware=m) for m in middlewares], []
    policy = options.read_policy(args)
    root = options.keystore_path(args)
    keystore = Keystore.open(root, passphrase=options.passphrase(args) if ZENOH in middlewares else None)
    if ZENOH in middlewares and not default_zenoh_dir(root).joinpath("router.json5").is_file():
        render_zenoh(keystore, policy, default_zenoh_dir(root), now)
    reports = []
    for middleware in middlewares:
        report = verify_keystore(policy, root, utc_now(), domain_id=args.domain_id, denied_sample=args.denied_sample,
                                 intruders=not args.no_intruders, timeout_s=args.timeout, middleware=middleware)
        # Evidence for the posture (enforcement_proof check): what was proven, where, when.
        record_verify_result(KeystoreLayout(root), passed=report.passed, checks=len(report.checks),
                             failures=len(report.failures()), domain_id=report.domain_id, now=utc_now(),
                             middleware=middleware)
        reports.append(report)
    cross = []
    if {CYCLONEDDS, FASTDDS} <= set(middlewares) and not args.no_cross_vendor:
        cross = measure_cross_vendor(policy, root, domain_id=args.domain_id)
    return reports, cross


def run(args: argparse.Namespace) -> int:
    """Run the proof on each selected middleware and print the tables; exit 1 on any false allow or deny."""
    reports, cross = _prove(args, _selected(args))
    colour = options.stdout_is_tty()
    if args.json:
        print(render.to_json(reports[0] if len(reports) == 1 and not cross else
                             {"reports": reports, "cross_vendor": cross}))
    else:
        print("\n\n".join(f"== {MIDDLEWARE_NAMES[r.middleware]} ==\n"
                          + format_report(r, details=args.details, colour=colour)
                          if len(reports) > 1 else format_report(r, details=args.details, colour=colour)
                          for r in reports))
        if len(reports) > 1 or cross:
            print("\n" + format_matrix(reports, cross, colour=colour))
    return 0 if all(r.passed for r in reports) else 1
