"""``cobot-security incident list|show|close|export|verify-bundle|drill``: incidents and their evidence."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from cobot_security import render
from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import utc_now
from cobot_security.incident.bundle import export_bundle, verify_bundle
from cobot_security.incident.drill import DEFAULT_VALID_DAYS, run_drill
from cobot_security.incident.incidents import IncidentStore, close_incident
from cobot_security.incident.plan import load_plan
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.resources import shipped_file


def _common(parser: argparse.ArgumentParser) -> None:
    options.add_keystore(parser)
    parser.add_argument("--incident-dir", type=Path, default=None,
                        help="incident records (default: <keystore>/.cobot_security/incidents)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``incident`` group."""
    parser = subparsers.add_parser(
        "incident", help=command_help("incident"),
        description="Incidents opened by the supervisor's incident response plan (docs/incident_response.md).")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    listing = verbs.add_parser("list", help="list incidents")
    _common(listing)
    listing.add_argument("--json", action="store_true", help="print the records as JSON")
    listing.set_defaults(run=run_list)
    show = verbs.add_parser("show", help="print one incident with its timeline (JSON)")
    _common(show)
    show.add_argument("id")
    show.set_defaults(run=run_show)
    close = verbs.add_parser("close", help="close an open incident with a note")
    _common(close)
    close.add_argument("id")
    close.add_argument("--note", required=True, help="why it is closed (kept in the timeline)")
    close.set_defaults(run=run_close)
    export = verbs.add_parser(
        "export", help="write the signed evidence bundle of an incident",
        description=("Bundle the record, posture snapshots, health messages, the audit log from its first "
                     "record (hash chain) with the incident's excerpt, and the keystore manifest. The "
                     "manifest is signed by the permissions CA (S/MIME) when its key can be loaded, else "
                     "HMAC'd with the audit key; the output says which."))
    _common(export)
    options.add_passphrase(export)
    export.add_argument("id")
    export.add_argument("-o", "--output", type=Path, required=True, help="FILE.tar.gz to write")
    export.set_defaults(run=run_export)
    verify = verbs.add_parser(
        "verify-bundle", help="check an evidence bundle (exit 1 naming the first bad member)",
        description="Check the bundle's signature against --keystore, every member's SHA-256 and the audit chain.")
    options.add_keystore(verify)
    verify.add_argument("bundle", type=Path)
    verify.set_defaults(run=run_verify)
    drill = verbs.add_parser(
        "drill", help="run a playbook in dry run and write the drill attestation",
        description=("Simulate the playbook's trigger, dry-run every action (nothing is published, called or "
                     "changed), record the timeline as a drill incident and write the "
                     "incident_response_drill attestation (dated today) into --attestations."))
    _common(drill)
    drill.add_argument("playbook")
    drill.add_argument("--plan", type=Path, default=None,
                       help="incident plan (default: the package's policies/incident_response.yaml)")
    drill.add_argument("--attestations", type=Path, required=True, help="attestations YAML to update")
    drill.add_argument("--valid-days", type=int, default=DEFAULT_VALID_DAYS,
                       help=f"validity of the attestation (default {DEFAULT_VALID_DAYS})")
    drill.add_argument("--attested-by", default=None, help="who held the drill (default: the current user)")
    drill.set_defaults(run=run_drill_cmd)


def _store(args: argparse.Namespace) -> IncidentStore:
    directory = args.incident_dir or KeystoreLayout(options.keystore_path(args)).incidents_dir
    return IncidentStore(directory)


def run_list(args: argparse.Namespace) -> int:
    """Print every incident."""
    incidents = _store(args).list()
    if args.json:
        print(render.to_json([i.to_json() for i in incidents]))
        return 0
    render.table(("id", "status", "severity", "trigger", "subjects", "opened_at"),
                 [(i.id, i.status, i.severity, i.trigger, ",".join(i.subjects), i.opened_at) for i in incidents])
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print one incident."""
    print(render.to_json(_store(args).get(args.id).to_json()))
    return 0


def run_close(args: argparse.Namespace) -> int:
    """Close an incident."""
    incident = close_incident(_store(args), args.id, args.note, utc_now())
    print(f"closed {incident.id} at {incident.closed_at}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write the evidence bundle."""
    layout = KeystoreLayout(options.keystore_path(args))
    result = export_bundle(_store(args), args.id, layout, args.output, utc_now(), options.passphrase(args))
    how = "S/MIME by the permissions CA" if result.signature == "smime" else "HMAC-SHA256 with the audit key"
    print(f"wrote {result.path}: {len(result.members)} members, manifest signed with {how}")
    if result.missing:
        print("not available: " + ", ".join(result.missing))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Verify a bundle; 1 naming the first bad member."""
    result = verify_bundle(args.bundle, KeystoreLayout(options.keystore_path(args)))
    if result.ok:
        print(f"bundle intact: {result.members} members, signature {result.signature}")
        return 0
    print(f"cobot-security incident verify-bundle: {args.bundle}: {result.first_bad}: {result.problem}",
          file=sys.stderr)
    return 1


def run_drill_cmd(args: argparse.Namespace) -> int:
    """Run a drill and write the attestation."""
    plan = load_plan(args.plan or shipped_file("policies/incident_response.yaml"))
    who = args.attested_by or f"{getpass.getuser()} (cobot-security incident drill)"
    result = run_drill(plan, args.playbook, _store(args), args.attestations, utc_now(), who, args.valid_days)
    for entry in result.incident.timeline:
        print(f"{entry.time}  {entry.event:<7} {entry.result:<9} {entry.action:<18} {entry.detail}")
    print(f"drill incident {result.incident.id}; attestation {result.attestation.id} valid until "
          f"{result.attestation.expires.isoformat()} written to {args.attestations}")
    return 0
