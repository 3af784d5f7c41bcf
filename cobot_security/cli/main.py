"""``cobot-security``: the command-line adapter and its single error boundary.

Each subcommand module registers its arguments and calls the core once.  Exit codes follow
DESIGN.md: 0 success, 1 the check ran and found a failure, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import os
import sys

from cobot_security import __version__
from cobot_security.cli import (
    cmd_audit,
    cmd_demo,
    cmd_enclave,
    cmd_incident,
    cmd_init,
    cmd_network,
    cmd_policy,
    cmd_posture,
    cmd_reconcile,
    cmd_render,
    cmd_revoke,
    cmd_rotate,
    cmd_scan,
    cmd_verify,
)
from cobot_security.errors import CobotSecurityError

_COMMANDS = (
    cmd_demo,
    cmd_init,
    cmd_enclave,
    cmd_policy,
    cmd_verify,
    cmd_render,
    cmd_posture,
    cmd_reconcile,
    cmd_rotate,
    cmd_revoke,
    cmd_audit,
    cmd_network,
    cmd_scan,
    cmd_incident,
)


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line error (its default) and never prints a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The full argparse tree (used by main and by the docs)."""
    parser = _Parser(
        prog="cobot-security",
        description=(
            "SROS2 keystores, least-privilege DDS permissions and their proof against real DDS "
            "Security, for a collaborative-robot workcell. Exit codes: 0 success, 1 a check "
            "found a failure, 2 bad input or usage."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module in _COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code instead of raising (errors go to stderr, one line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except CobotSecurityError as exc:
        print(f"cobot-security {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and keep the exit flush from complaining.
        # (Before OSError, of which it is a subclass.)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        # Last resort for file-system failures no command anticipated: one line, no traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cobot-security {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"cobot-security {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
