"""``cobot-security demo``: the secure-workcell demo on the example cell (the README's main job)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help=command_help("demo"),
        description=(
            "Create the keystore from the policy if needed, prove it with the real DDS Security plugins, "
            "start the security stack (health_reporter, supervisor, keystore_manager) and one demo node per "
            "cell enclave as real rclpy processes, then play a scenario: a healthy posture, a certificate "
            "entering its renewal window and rotated with a rolling restart, an enclave revoked, a node "
            "that is not in the policy joining, a tampered artifact. The supervisor's posture table updates "
            "live; at the end a report is written as Markdown, JSON and HTML. Ctrl-C stops every process."
        ),
    )
    options.add_keystore(parser)
    options.add_policy(parser)
    parser.add_argument("--work-dir", type=Path, default=Path("reports") / "demo",
                        help="where the scenario keystore copy, logs and reports go (default reports/demo)")
    parser.add_argument("--duration", type=float, default=60.0, help="scenario length in seconds (default 60)")
    parser.add_argument("--keep-running", action="store_true", help="keep the cell running after the scenario")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: the policy's first)")
    parser.add_argument("--no-colour", action="store_true", help="plain text even on a terminal")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when it ran end to end with a passing proof and a written report."""
    # The demo is the only command that runs rclpy (through the nodes adapter): importing it here,
    # not at the top, keeps `cobot-security` and its other commands free of ROS.
    from cobot_security.demo.runner import DemoConfig, run_demo

    if args.duration < 20:
        raise InputError(None, "--duration", "at least 20 seconds (the scenario has six steps)", str(args.duration))
    tty = sys.stdout.isatty()
    config = DemoConfig(
        policy_path=options.policy_path(args),
        keystore=options.keystore_path(args),
        work_dir=args.work_dir,
        duration_s=args.duration,
        keep_running=args.keep_running,
        domain_id=args.domain_id,
        colour=tty and not args.no_colour,
        live=tty,
    )
    outcome = run_demo(config)
    if outcome.verify is None or not outcome.verify.passed:
        return 1
    return 0 if outcome.reports else 1
