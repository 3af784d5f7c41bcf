"""``cobot-security``: the command-line adapter and its single error boundary.

Each subcommand module registers its arguments and calls the core once; only the module of the
command being run is imported (:mod:`cobot_security.cli.commands` lists them all).  Exit codes
follow DESIGN.md: 0 success, 1 the check ran and found a failure, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from cobot_security import __version__
from cobot_security.cli.commands import COMMANDS
from cobot_security.errors import CobotSecurityError


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line error (its default) and never prints a traceback."""


def _requested(argv: list[str]) -> str | None:
    """The command named on the command line (the first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argparse tree: every command listed, the module of ``command`` imported and registered.

    Without ``command`` every module is registered (the full tree, for the docs).  With a command
    name, the others are placeholders carrying their help line only, so that ``--help`` and
    "invalid choice" still name them all without importing their modules.
    """
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
    wanted = {c.module for c in COMMANDS if command is None or c.name == command}
    registered: set[str] = set()
    for entry in COMMANDS:
        if entry.module in registered:
            continue
        if entry.module in wanted:
            importlib.import_module(f"cobot_security.cli.{entry.module}").register(subparsers)
            registered.add(entry.module)
        else:
            subparsers.add_parser(entry.name, help=entry.help, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code instead of raising (errors go to stderr, one line)."""
    words = sys.argv[1:] if argv is None else argv
    # Only the named command's module is imported (the others are listed from the catalog).
    parser = build_parser(_requested(words) or "")
    args = parser.parse_args(words)
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
