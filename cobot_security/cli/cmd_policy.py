"""``cobot-security policy validate|lint|import-sros2|learn|diff``: work on the workcell policy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cobot_security import render
from cobot_security.atomic import write_bytes_atomic
from cobot_security.cli import cmd_policy_diff, cmd_policy_learn, options
from cobot_security.cli.commands import command_help
from cobot_security.errors import InputError
from cobot_security.policy.export import dump_policy_yaml
from cobot_security.policy.learn import unused_grants
from cobot_security.policy.lint import lint_policy
from cobot_security.policy.load import load_policy
from cobot_security.policy.sros2_import import import_sros2_policy


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``policy`` subcommand group."""
    parser = subparsers.add_parser("policy", help=command_help("policy"),
                                   description="Validate, lint, import, learn or diff workcell policies.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    validate = verbs.add_parser("validate", help="check a policy against the schema",
                                description="Load the policy; print a summary, or one error line naming "
                                "file, line and field (exit 2).")
    options.add_policy(validate)
    validate.set_defaults(run=run_validate)

    lint = verbs.add_parser("lint", help="report wildcards, weak governance and dangling names",
                            description="Report hygiene findings (wildcards, weak protection, topics "
                            "nobody publishes...). Exit 1 when a finding is an error, or any "
                            "finding with --strict.")
    options.add_policy(lint)
    lint.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    lint.add_argument("--json", action="store_true", help="print JSON")
    lint.add_argument("--observed", type=Path, default=None, metavar="LEARNED",
                      help="also list grants a learned policy (from `policy learn`) never used, as 'unused grant'")
    lint.set_defaults(run=run_lint)

    imp = verbs.add_parser("import-sros2", help="convert an sros2 policy XML to workcell YAML",
                           description="Convert an sros2 policy XML (with its XIncludes) into this "
                           "package's YAML policy format.")
    imp.add_argument("xml", type=Path, metavar="FILE.xml")
    imp.add_argument("-o", "--output", type=Path, default=None, help="write here instead of stdout")
    imp.add_argument("--force", action="store_true", help="overwrite an existing output file")
    imp.set_defaults(run=run_import)

    cmd_policy_learn.register(verbs)
    cmd_policy_diff.register(verbs)


def run_validate(args: argparse.Namespace) -> int:
    """Validate and summarise."""
    policy = options.read_policy(args)
    nodes = sum(len(e.nodes) for e in policy.enclaves)
    print(f"{policy.source}: valid policy '{policy.name}': {len(policy.enclaves)} enclave(s), {nodes} node(s), "
          f"domain(s) {', '.join(map(str, policy.domain_ids))}")
    return 0


def run_lint(args: argparse.Namespace) -> int:
    """Lint and print findings."""
    policy = options.read_policy(args)
    findings = lint_policy(policy)
    if args.observed is not None:
        findings += unused_grants(policy, load_policy(args.observed), f"in {args.observed}")
    if args.json:
        print(render.to_json(findings))
    elif findings:
        rows = [(f.level, f"{policy.source}:{f.line}" if f.line else policy.source, f.enclave, f.field, f.message)
                for f in findings]
        render.table(("level", "where", "enclave", "field", "finding"), rows)
    else:
        print(f"{policy.source}: no findings")
    failing = [f for f in findings if f.level == "error" or args.strict]
    return 1 if failing else 0


def run_import(args: argparse.Namespace) -> int:
    """Convert and write or print the YAML."""
    policy = import_sros2_policy(args.xml)
    text = dump_policy_yaml(policy)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    if args.output.exists() and not args.force:
        raise InputError(args.output, "--output", "a path that does not exist yet (or --force)", "an existing file")
    try:
        write_bytes_atomic(args.output, text.encode(), 0o644)
    except OSError as exc:
        raise InputError(args.output, "--output", "a writable file path in an existing directory",
                         exc.strerror or type(exc).__name__) from None
    print(f"wrote {args.output}: {len(policy.enclaves)} enclave(s)")
    return 0
