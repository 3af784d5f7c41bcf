"""``cobot-security verify``: prove the keystore on real middlewares (Cyclone DDS, Fast DDS, Zenoh)."""

from __future__ import annotations

import argparse
import io

from cobot_security.cli import options, render
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.dds.cross_vendor import CrossVendorResult, measure_cross_vendor
from cobot_security.dds.runner import installed_middlewares
from cobot_security.dds.verify import VerifyReport, run_self_test, summarize, verify_keystore
from cobot_security.errors import InputError
from cobot_security.keystore.evidence import record_verify_result
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.store import Keystore
from cobot_security.middleware.zenoh_render import default_zenoh_dir, render_zenoh
from cobot_security.policy.model import CYCLONEDDS, FASTDDS, MIDDLEWARES, ZENOH

_NAMES = {CYCLONEDDS: "Cyclone DDS", FASTDDS: "Fast DDS", ZENOH: "Zenoh"}


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


def _fraction(tally: list[int]) -> str:
    return f"{tally[0]}/{tally[1]}" if tally[1] else "-"


def _summary_rows(report: VerifyReport) -> list[tuple[str, ...]]:
    return [
        (row.subject, row.joined, _fraction(row.flows), _fraction(row.writers_refused),
         _fraction(row.readers_refused), "PASS" if row.passed else "FAIL")
        for row in summarize(report)
    ]


def format_report(report: VerifyReport, *, details: bool = False, colour: bool = False) -> str:
    """The verify table (per participant, or every check with ``details``) and its summary lines."""
    buffer = io.StringIO()
    if details:
        render.table(("category", "subject", "topic", "expected", "observed", "result"),
                     [(c.category, c.subject, c.topic, c.expected, c.observed, "PASS" if c.passed else "FAIL")
                      for c in report.checks], out=buffer, colour=colour)
    else:
        render.table(("participant", "joined", "granted flows received", "ungranted writers refused",
                      "ungranted readers refused", "result"), _summary_rows(report), out=buffer, colour=colour)
    failures = report.failures()
    allowed = sum(1 for c in report.checks if c.category == "granted flow" and c.passed)
    refused = sum(1 for c in report.checks if c.category.startswith("denied") and c.passed)
    buffer.write(f"\nverify ({report.middleware}): {len(report.checks)} checks on domain {report.domain_id} in "
                 f"{report.duration_s:.1f}s: {allowed} granted flows delivered, {refused} ungranted endpoints "
                 f"refused, {len(failures)} failure(s)\n")
    for check in failures[:20]:
        buffer.write(f"  FAIL {check.category}: {check.subject} {check.topic}: expected {check.expected}, "
                     f"observed {check.observed}\n")
    return buffer.getvalue().rstrip("\n")


def _tally(report: VerifyReport, categories: tuple[str, ...]) -> str:
    checks = [c for c in report.checks if c.category in categories]
    return f"{sum(c.passed for c in checks)}/{len(checks)}" if checks else "-"


def format_matrix(reports: list[VerifyReport], cross: list[CrossVendorResult], colour: bool = False) -> str:
    """One column per middleware (what each proved), then the cross-vendor measurement."""
    buffer = io.StringIO()
    rows = [(label, *(_tally(r, categories) for r in reports)) for label, categories in (
        ("participants joined", ("participant",)), ("granted flows delivered", ("granted flow",)),
        ("ungranted writers refused", ("denied writer",)), ("ungranted readers refused", ("denied reader",)),
        ("intruders isolated", ("intruder",)), ("revoked identities refused", ("revoked",)),
        ("unexpected deliveries", ("unexpected",)))]
    rows.append(("seconds", *(f"{r.duration_s:.1f}" for r in reports)))
    rows.append(("result", *("PASS" if r.passed else "FAIL" for r in reports)))
    render.table(("check", *(_NAMES[r.middleware] for r in reports)), rows, out=buffer, colour=colour)
    if cross:
        buffer.write("\ncross-vendor (one keystore, one domain; same-vendor rows are the run's controls)\n")
        render.table(("writer", "reader", "granted flows delivered", "enclave pairs silent"),
                     [(_NAMES[c.writer_vendor], _NAMES[c.reader_vendor], f"{c.delivered}/{c.flows}",
                       str(len(c.silent_pairs))) for c in cross], out=buffer, colour=colour)
        if not all(c.passed for c in cross):
            buffer.write("finding: a Fast DDS and a Cyclone DDS participant authenticate only when Cyclone "
                         "initiates the handshake (see docs/middlewares.md); not counted in the result\n")
    return buffer.getvalue().rstrip("\n")


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
        print("\n\n".join(f"== {_NAMES[r.middleware]} ==\n" + format_report(r, details=args.details, colour=colour)
                          if len(reports) > 1 else format_report(r, details=args.details, colour=colour)
                          for r in reports))
        if len(reports) > 1 or cross:
            print("\n" + format_matrix(reports, cross, colour=colour))
    return 0 if all(r.passed for r in reports) else 1
