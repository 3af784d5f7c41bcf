"""``cobot-security verify``: prove the keystore with real DDS Security participants."""

from __future__ import annotations

import argparse
from collections import defaultdict

from cobot_security.cli import options, render
from cobot_security.clock import utc_now
from cobot_security.dds.verify import VerifyReport, run_self_test, verify_keystore
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


def _summary_rows(report: VerifyReport) -> list[tuple[str, ...]]:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for check in report.checks:
        subject = check.subject.split(" -> ")[-1] if check.category == "granted flow" else check.subject
        tally = counts[(subject, check.category)]
        tally[0] += int(check.passed)
        tally[1] += 1
    rows = []
    for (subject, category), (ok, total) in sorted(counts.items()):
        verdict = "PASS" if ok == total else "FAIL"
        expected = {"granted flow": "received", "denied writer": "refused", "denied reader": "refused",
                    "participant": "joined", "intruder": "isolated", "unexpected": "none"}[category]
        rows.append((subject, category, expected, f"{ok}/{total}", verdict))
    return rows


def run(args: argparse.Namespace) -> int:
    """Run the proof and print the table; exit 1 when anything was falsely allowed or denied."""
    if args.self_test:
        report = run_self_test(utc_now(), domain_id=231 if args.domain_id is None else args.domain_id,
                               timeout_s=args.timeout)
    else:
        policy = options.read_policy(args)
        root = options.keystore_path(args)
        Keystore.open(root)
        report = verify_keystore(
            policy, root, utc_now(), domain_id=args.domain_id, denied_sample=args.denied_sample,
            intruders=not args.no_intruders, timeout_s=args.timeout,
        )
    if args.json:
        print(render.to_json(report))
    elif args.details:
        render.table(("category", "subject", "topic", "expected", "observed", "result"),
                     [(c.category, c.subject, c.topic, c.expected, c.observed, "PASS" if c.passed else "FAIL")
                      for c in report.checks], colour=options.stdout_is_tty())
    else:
        render.table(("enclave", "check", "expected", "passed", "result"), _summary_rows(report),
                     colour=options.stdout_is_tty())
    failures = report.failures()
    allowed = sum(1 for c in report.checks if c.category == "granted flow" and c.passed)
    refused = sum(1 for c in report.checks if c.category.startswith("denied") and c.passed)
    print(f"\nverify: {len(report.checks)} checks on domain {report.domain_id} in {report.duration_s:.1f}s: "
          f"{allowed} granted flows delivered, {refused} ungranted endpoints refused, {len(failures)} failure(s)")
    for check in failures[:20]:
        print(f"  FAIL {check.category}: {check.subject} {check.topic}: expected {check.expected}, "
              f"observed {check.observed}")
    return 0 if report.passed else 1
