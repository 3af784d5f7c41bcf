"""``cobot-security host bundle|request|sign|install``: keystores for the hosts of a multi-host cell.

On the CA machine ``bundle`` and ``sign`` write sealed packages; on a host ``request`` makes keys
that never leave it and ``install`` puts a package in place (docs/deployment.md).  Every verb is
idempotent where it can be and prints ``--json`` for fleet tools.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cobot_security import atomic, render
from cobot_security.cli import options
from cobot_security.cli.commands import command_help
from cobot_security.clock import iso_utc, utc_now
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore import pki
from cobot_security.keystore.host_authority import Answer, answer_request, bundle_host, describe_answer
from cobot_security.keystore.host_documents import parse_request
from cobot_security.keystore.host_install import install_package
from cobot_security.keystore.host_member import make_enrollment_request
from cobot_security.keystore.signed_json import MAX_DOCUMENT_BYTES
from cobot_security.keystore.store import Keystore
from cobot_security.names import NameContext, validate_host_name


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``host`` group and its four verbs."""
    group = subparsers.add_parser("host", help=command_help("host"),
                                  description="Give each host of the cell only its own enclaves, with private keys "
                                              "born on the host where possible.")
    verbs = group.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    bundle = verbs.add_parser("bundle", help="(CA machine) write the signed package HOST installs",
                              description="Write a package sealed by the permissions CA holding exactly what HOST "
                                          "needs: public CA certificates, CRL, governance and HOST's enclaves (keys "
                                          "only for enclaves not born on the host). Never a CA private key.")
    bundle.add_argument("host", metavar="HOST")
    request = verbs.add_parser("request", help="(host) make this host's keys and a request file",
                               description="Generate the key pair of every enclave of HOST here (0600, never "
                                           "copied) and write the request of their certificates (CSRs, host, "
                                           "nonce, time) for the CA machine.")
    request.add_argument("host", metavar="HOST")
    sign = verbs.add_parser("sign", help="(CA machine) check a request file and write the answer",
                            description="Check every CSR of REQUEST against the policy (the host's own enclaves, "
                                        "subject CN=<enclave>, EC P-256, fresh and never seen) and write the "
                                        "certificates and signed permissions for host install.")
    sign.add_argument("request", metavar="REQUEST", type=Path)
    for parser in (bundle, request, sign):
        parser.add_argument("-o", "--output", type=Path, required=True, help="file to write (replaced atomically)")
        options.add_keystore(parser)
        options.add_policy(parser)
    for parser in (bundle, sign):
        options.add_passphrase(parser)
    install = verbs.add_parser("install", help="(host) install a bundle or an answer into this host's keystore",
                               description="Verify FILE against the pinned permissions CA certificate, check it is "
                                           "addressed to this host and install it atomically; only what changed "
                                           "is replaced. Nothing is installed when a check fails (exit 2).")
    install.add_argument("file", metavar="FILE", type=Path)
    install.add_argument("--keystore", type=Path, required=True, help="this host's keystore directory")
    install.add_argument("--ca-cert", type=Path, required=True, metavar="PEM",
                         help="the permissions CA certificate, obtained out of band (pinned)")
    install.add_argument("--host", default=None, help="this host's name in the policy (default: the keystore's)")
    for parser, run in ((bundle, run_bundle), (request, run_request), (sign, run_sign), (install, run_install)):
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.set_defaults(run=run)


def _read(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise InputError(path, None, f"a readable {what}", exc.strerror or type(exc).__name__) from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(path, None, f"a {what} of at most {MAX_DOCUMENT_BYTES} bytes", "a larger file")
    return data


def _write(path: Path, data: bytes, mode: int) -> None:
    try:
        atomic.write_bytes_atomic(path, data, mode)
    except OSError as exc:
        raise KeystoreError(exc.filename or path, f"cannot write: {exc.strerror or exc}") from None


def _host(name: str, field: str) -> str:
    return validate_host_name(name, NameContext(field=field))


def _print_answer(args: argparse.Namespace, answer: Answer) -> int:
    summary = {**describe_answer(answer), "output": str(args.output)}
    if args.json:
        print(render.to_json(summary))
        return 0
    keys = f", keys of {len(answer.package.keys)} enclave(s) inside (mode 0600)" if answer.package.keys else ""
    print(f"{answer.package.kind} for host {answer.host}: {len(answer.package.records)} enclave(s){keys} -> "
          f"{args.output}")
    return 0


def run_bundle(args: argparse.Namespace) -> int:
    """Seal HOST's bundle."""
    policy = options.read_policy(args)
    keystore = Keystore.open(options.keystore_path(args), passphrase=options.passphrase(args))
    answer = bundle_host(keystore, policy, _host(args.host, "HOST"), utc_now())
    _write(args.output, answer.document, 0o600)
    return _print_answer(args, answer)


def run_request(args: argparse.Namespace) -> int:
    """Make this host's keys and the request file."""
    policy = options.read_policy(args)
    keystore = Keystore.open_host(options.keystore_path(args))
    request = make_enrollment_request(keystore, policy, _host(args.host, "HOST"), utc_now())
    _write(args.output, request.to_bytes(), 0o644)
    summary = {"host": request.host, "kind": request.kind, "nonce": request.nonce, "time": iso_utc(request.time),
               "enclaves": [i.enclave for i in request.items], "fingerprint": request.fingerprint(),
               "output": str(args.output)}
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print(f"request for host {request.host}: {len(request.items)} key pair(s) made in "
              f"{keystore.layout.pending_dir} (0600), CSRs -> {args.output}\nfingerprint {request.fingerprint()} "
              "(compare with the one host sign prints)")
    return 0


def run_sign(args: argparse.Namespace) -> int:
    """Check a request file and seal the answer."""
    policy = options.read_policy(args)
    source = str(args.request)
    request = parse_request(_read(args.request, "host request"), source)
    keystore = Keystore.open(options.keystore_path(args), passphrase=options.passphrase(args))
    answer = answer_request(keystore, policy, request, utc_now(), source=source, by_hand=True)
    _write(args.output, answer.document, 0o644)
    if not args.json:
        print(f"request fingerprint {request.fingerprint()}")
    return _print_answer(args, answer)


def run_install(args: argparse.Namespace) -> int:
    """Install a package into this host's keystore."""
    pinned = pki.load_certificate(_read(args.ca_cert, "PEM certificate"), args.ca_cert)
    host = _host(args.host, "--host") if args.host is not None else None
    keystore = Keystore.open_host(args.keystore)
    result = install_package(keystore, _read(args.file, "package"), pinned, args.ca_cert, utc_now(),
                             source=str(args.file), host=host)
    if args.json:
        print(render.to_json(result))
        return 0
    print(f"installed {result.kind} for host {result.host} into {args.keystore}: "
          f"{len(result.changed)} enclave(s) changed, {len(result.removed)} removed, {result.files_written} "
          "file(s) written")
    for enclave in result.changed:
        print(f"  restart the nodes of {enclave}")
    for enclave, reason in result.refused.items():
        print(f"  refused {enclave}: {reason}")
    return 0
