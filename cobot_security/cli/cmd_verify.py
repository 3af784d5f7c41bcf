"""``cobot-security verify``: prove the keystore with real DDS Security participants."""

from __future__ import annotations

import argparse
import io

from cobot_security.cli import options, render
from cobot_security.clock import utc_now
from cobot_security.dds.verify import (
    VerifyReport,
    run_self_test,
    summarize,
    verify_keystore,
)
from cobot_security.keystore.evidence import record_verify_result
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.store import Keystore


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``verify`` subcommand."""
    parser = subparsers.add_parser(
        "verify",
        help="prove the keystore against real DDS Security",
        description=(
            "Start one Cyclone DDS participant per enclave (in its own process, loading the "
            "enclave's files as rmw_cyclonedds_cpp does) and check that every granted flow "
            "delivers, that a sample of ungranted writers and readers is refused with "
            "NOT_ALLOWED_BY_SECURITY, and that intruders (a foreign-CA identity, a participant "
            "without security) hear nothing and are heard by none. Exit 1 on any false allow or "
            "false deny. Discovery is confined to loopback."
        ),
    )
    options.add_keystore(parser)
    options.add_policy(parser)
    parser.add_argument("--domain-id", type=int, default=None,
                        help="DDS domain to run the proof on (default: the policy's first domain)")
    parser.add_argument("--denied-sample", type=int, default=3, metavar="N",
                        help="ungranted topics tried per enclave, for writing and for reading (default 3)")
    parser.add_argument("--no-intruders", action="store_true", help="skip the foreign-CA and unsecured intruders")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for granted flows (default 60)")
    parser.add_argument("--details", action="store_true", help="print every check, not the per-enclave summary")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("--self-test", action="store_true",
                        help="ignore --policy/--keystore: prove on a throwaway three-enclave keystore that "
                        "this machine's DDS Security plugins load and enforce (exit 1 if not)")
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
    buffer.write(f"\nverify: {len(report.checks)} checks on domain {report.domain_id} in {report.duration_s:.1f}s: "
                 f"{allowed} granted flows delivered, {refused} ungranted endpoints refused, "
                 f"{len(failures)} failure(s)\n")
    for check in failures[:20]:
        buffer.write(f"  FAIL {check.category}: {check.subject} {check.topic}: expected {check.expected}, "
                     f"observed {check.observed}\n")
    return buffer.getvalue().rstrip("\n")


def run(args: argparse.Namespace) -> int:
    """Run the proof and print the table; exit 1 when anything was falsely allowed or denied."""
    if args.self_test:
        report = run_self_test(utc_now(), domain_id=230 if args.domain_id is None else args.domain_id,
                               timeout_s=args.timeout)
    else:
        policy = options.read_policy(args)
        root = options.keystore_path(args)
        Keystore.open(root)
        report = verify_keystore(
            policy, root, utc_now(), domain_id=args.domain_id, denied_sample=args.denied_sample,
            intruders=not args.no_intruders, timeout_s=args.timeout,
        )
        # Evidence for the posture (enforcement_proof check): what was proven, when.
        record_verify_result(KeystoreLayout(root), passed=report.passed, checks=len(report.checks),
                             failures=len(report.failures()), domain_id=report.domain_id, now=utc_now())
    if args.json:
        print(render.to_json(report))
    else:
        print(format_report(report, details=args.details, colour=options.stdout_is_tty()))
    return 0 if report.passed else 1
