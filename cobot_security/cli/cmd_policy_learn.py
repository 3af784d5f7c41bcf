"""``cobot-security policy learn``: learn the least-privilege policy from a cell running without security."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cobot_security import render
from cobot_security.atomic import write_bytes_atomic
from cobot_security.clock import utc_now
from cobot_security.errors import CobotSecurityError, InputError, PolicyError
from cobot_security.policy.export import dump_policy_yaml
from cobot_security.policy.learn import GROUP_BY_NODE, GROUPINGS, LearnOptions, learn_policy, learned_header
from cobot_security.policy.lint import LintFinding
from cobot_security.policy.load import MAX_DOMAIN_ID, load_policy_text
from cobot_security.policy.merge import merge_learned
from cobot_security.policy.observation import ObservationLog
from cobot_security.yaml_source import read_yaml_file

#: Longest learning window: a day covers a shift's rare tasks; longer ones are repeated --merge runs.
MAX_DURATION_S = 86_400.0
MIN_PERIOD_S, MAX_PERIOD_S = 0.02, 10.0
#: Node-change lines printed per progress tick at most (a graph flooded with nodes stays readable).
MAX_CHANGE_LINES = 50


class NothingObserved(CobotSecurityError):
    """The window ended without a single node on the domain (exit 1: the check ran, found nothing)."""


def register(verbs: argparse._SubParsersAction) -> None:
    """Add ``policy learn``."""
    learn = verbs.add_parser(
        "learn", help="learn the policy from a running cell (without security)",
        description="Join the domain as a hidden rclpy observer, sample the graph for --duration "
        "seconds (nodes, enclaves, publishers, subscribers, services, actions), and write the "
        "least-privilege workcell policy of what was seen. With --merge, add what was seen to an "
        "existing policy, keeping its text, and list grants never observed as 'unused grant'.")
    learn.add_argument("--duration", type=float, required=True, metavar="S",
                       help=f"seconds to observe (0 < S <= {MAX_DURATION_S:g})")
    learn.add_argument("--domain-id", type=int, default=None,
                       help="ROS domain to observe (default: $ROS_DOMAIN_ID, else 0)")
    learn.add_argument("--output", "-o", type=Path, default=None, help="write here instead of stdout")
    learn.add_argument("--merge", type=Path, default=None, metavar="EXISTING",
                       help="add what was observed to this policy instead of writing a new one")
    learn.add_argument("--enclaves", choices=GROUPINGS, default=GROUP_BY_NODE,
                       help="one enclave per node (default), or grouped by the enclave each node reports")
    learn.add_argument("--name", default=None, help="cell name of a new policy (default: learned-domain-N)")
    learn.add_argument("--sample-period", type=float, default=0.2, metavar="S",
                       help=f"seconds between graph samples ({MIN_PERIOD_S:g}..{MAX_PERIOD_S:g}, default 0.2)")
    learn.add_argument("--force", action="store_true", help="overwrite an existing --output file")
    learn.set_defaults(run=run_learn)


def _domain_id(args: argparse.Namespace) -> int:
    if args.domain_id is not None:
        value, where = args.domain_id, "--domain-id"
    else:
        text = os.environ.get("ROS_DOMAIN_ID", "").strip() or "0"
        where = "ROS_DOMAIN_ID"
        if not text.isdigit():
            raise InputError(None, where, f"an integer 0..{MAX_DOMAIN_ID}", repr(text))
        value = int(text)
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise InputError(None, where, f"an integer 0..{MAX_DOMAIN_ID}", str(value))
    return value


def _check_args(args: argparse.Namespace) -> None:
    if not 0 < args.duration <= MAX_DURATION_S:  # also refuses NaN
        raise InputError(None, "--duration", f"seconds in (0, {MAX_DURATION_S:g}]", str(args.duration))
    if not MIN_PERIOD_S <= args.sample_period <= MAX_PERIOD_S:
        raise InputError(None, "--sample-period", f"seconds in [{MIN_PERIOD_S:g}, {MAX_PERIOD_S:g}]",
                         str(args.sample_period))
    output = args.output
    if output is not None and output.exists() and not args.force and output != args.merge:
        raise InputError(output, "--output", "a path that does not exist yet (or --force)", "an existing file")


def _progress(log: ObservationLog, elapsed: float, duration: float) -> None:
    tty = sys.stderr.isatty()
    changes = log.changes()
    if len(changes) > MAX_CHANGE_LINES:
        changes[MAX_CHANGE_LINES:] = [f"learning: and {len(changes) - MAX_CHANGE_LINES} more node change(s)"]
    for change in changes:
        print("\r\033[K" + change if tty else change, file=sys.stderr, flush=True)
    line = log.progress(elapsed, duration)
    if tty:
        print("\r" + line, end="", file=sys.stderr, flush=True)
    elif int(elapsed) % 5 == 0 or elapsed >= duration:
        print(line, file=sys.stderr, flush=True)


def _print_unused(findings: tuple[LintFinding, ...], source: str) -> None:
    if findings:
        print(f"{len(findings)} unused grant(s) in {source} (kept; remove them by hand if they are not needed):",
              file=sys.stderr)
        render.table(("level", "where", "enclave", "field", "finding"),
                     [(f.level, f"{source}:{f.line}" if f.line else source, f.enclave, f.field, f.message)
                      for f in findings], out=sys.stderr)


def run_learn(args: argparse.Namespace) -> int:
    """Observe, then write or print the learned (or merged) policy."""
    _check_args(args)
    domain_id = _domain_id(args)
    existing = read_yaml_file(args.merge, "policy file", PolicyError) if args.merge is not None else None
    if existing is not None:
        load_policy_text(existing, str(args.merge))  # a bad file fails now, not after the window
    # Deferred: rclpy is imported only when a graph is observed, so the CLI starts fast without it.
    from cobot_security.nodes.graph_observer import observe_graph

    log = observe_graph(domain_id, args.duration, args.sample_period,
                        progress=lambda lg, t: _progress(lg, t, args.duration))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if not log.nodes:
        raise NothingObserved(f"no node observed on domain {domain_id} in {args.duration:g} s (is the cell "
                              "running on this domain, with discovery reaching this host?)")
    options = LearnOptions(args.name or f"learned-domain-{domain_id}", (domain_id,), args.enclaves)
    learned = learn_policy(log, options)
    if existing is not None:
        result = merge_learned(existing, str(args.merge), learned, f"in {log.duration_s:.0f} s")
        text = result.text
        _print_unused(result.unused, str(args.merge))
        summary = f"{len(result.additions)} grant(s) added, {len(result.new_enclaves)} new enclave(s)"
    else:
        text = dump_policy_yaml(learned, learned_header(log, options, utc_now()))
        summary = f"{len(learned.enclaves)} enclave(s), {len(log.nodes)} node(s)"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        write_bytes_atomic(args.output, text.encode(), 0o644)
    except OSError as exc:
        raise InputError(args.output, "--output", "a writable file path in an existing directory",
                         exc.strerror or type(exc).__name__) from None
    print(f"wrote {args.output}: {summary}", file=sys.stderr)
    return 0
