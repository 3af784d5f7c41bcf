"""``cobot-security posture``: evaluate the posture controls offline (no ROS needed), e.g. to gate CI."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

from cobot_security.atomic import write_bytes_atomic
from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.incident.plan import check_plan_file
from cobot_security.posture.attestations import load_attestations
from cobot_security.posture.catalog import Priority, load_controls
from cobot_security.posture.offline import evaluate_offline
from cobot_security.posture.report import FORMATS, exit_code_for, render_report
from cobot_security.resources import shipped_file


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``posture`` subcommand."""
    parser = subparsers.add_parser(
        "posture",
        help=command_help("posture"),
        description=(
            "Run the keystore and environment health probes (no ROS graph: graph checks have no "
            "evidence and therefore fail, as every check without evidence does), add the "
            "attestations, and evaluate every control of the catalog. --fail-on sets the exit "
            "code: 1 when a control of that priority or higher fails."
        ),
    )
    options.add_keystore(parser)
    options.add_policy(parser)
    parser.add_argument("--controls", type=Path, default=None,
                        help="posture controls catalog (default: the package's policies/posture_controls.yaml)")
    parser.add_argument("--attestations", type=Path, default=None,
                        help="attestations YAML (default: the package's policies/attestations.yaml)")
    parser.add_argument("--incident-plan", type=Path, default=None,
                        help="incident response plan (default: the package's policies/incident_response.yaml)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    parser.add_argument("--fail-on", choices=[p.value for p in Priority], default=None,
                        help="exit 1 when a control of this priority or higher fails (default: never)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="write the report here too")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print; the exit code follows --fail-on."""
    policy = options.read_policy(args)
    catalog = load_controls(args.controls or shipped_file("policies/posture_controls.yaml"))
    attestations = load_attestations(args.attestations or shipped_file("policies/attestations.yaml"))
    now = utc_now()
    plan_findings = check_plan_file(args.incident_plan or shipped_file("policies/incident_response.yaml"),
                                    now, tuple(attestations))[1]
    report = evaluate_offline(catalog, tuple(attestations), policy, options.keystore_path(args), plan_findings,
                              now, dict(os.environ), os.getuid(), socket.gethostname())
    text = render_report(report, args.format)
    print(text)
    if args.output is not None:
        write_bytes_atomic(args.output, (text + "\n").encode(), 0o644)
    return exit_code_for(report, Priority(args.fail_on) if args.fail_on else None)
