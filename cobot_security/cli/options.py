"""Flags shared by several subcommands (names fixed by DESIGN.md) and their one reading."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cobot_security.errors import InputError
from cobot_security.resources import default_keystore, shipped_file

if TYPE_CHECKING:
    from cobot_security.keystore.policy_snapshot import RememberedPolicy
    from cobot_security.policy.model import WorkcellPolicy

PASSPHRASE_ENV_DEFAULT = "COBOT_SECURITY_CA_PASSPHRASE"


def add_keystore(parser: argparse.ArgumentParser) -> None:
    """``--keystore DIR`` (default ``$ROS_SECURITY_KEYSTORE``, else ``keystores/default``)."""
    parser.add_argument(
        "--keystore", type=Path, default=None,
        help="keystore directory (default: $ROS_SECURITY_KEYSTORE, else keystores/default)",
    )


def add_policy(parser: argparse.ArgumentParser) -> None:
    """``--policy FILE`` (default: the package's example policies/workcell.yaml)."""
    parser.add_argument(
        "--policy", type=Path, default=None,
        help="workcell policy YAML (default: the package's policies/workcell.yaml)",
    )


def add_passphrase(parser: argparse.ArgumentParser, creating: bool = False) -> None:
    """How to get the CA key passphrase: an environment variable or a prompt, never a flag value."""
    verb = "encrypt the new CA private keys with" if creating else "decrypt the CA private keys with"
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--passphrase-env", metavar="VAR", default=None,
        help=f"{verb} the passphrase in environment variable VAR "
        f"(without this flag ${PASSPHRASE_ENV_DEFAULT} is used when set)",
    )
    group.add_argument("--ask-passphrase", action="store_true", help=f"prompt for the passphrase to {verb}")


def keystore_path(args: argparse.Namespace) -> Path:
    """The keystore directory the user meant."""
    return args.keystore if args.keystore is not None else default_keystore()


def policy_path(args: argparse.Namespace) -> Path:
    """The policy file the user meant."""
    return args.policy if args.policy is not None else shipped_file("policies/workcell.yaml")


def read_policy(args: argparse.Namespace) -> WorkcellPolicy:
    """Load and validate the policy named by ``--policy``.

    :raises PolicyError: when the file is missing or invalid.
    """
    # Imported here, as in read_policy_for: a command that reads no policy does not pay for PyYAML.
    from cobot_security.policy.load import load_policy

    return load_policy(policy_path(args))


def read_policy_for(args: argparse.Namespace, keystore: Path) -> RememberedPolicy:
    """Like :func:`read_policy`, served by ``keystore``'s policy snapshot when it holds the same file.

    :raises PolicyError: when the file is missing or invalid.
    """
    # Imported here: the snapshot reader needs the keystore package, most users of these flags do not.
    from cobot_security.clock import utc_now
    from cobot_security.keystore.layout import KeystoreLayout
    from cobot_security.keystore.policy_snapshot import load_policy_remembered

    return load_policy_remembered(KeystoreLayout(keystore), policy_path(args), utc_now())


def passphrase(args: argparse.Namespace, confirm: bool = False) -> bytes | None:
    """The CA passphrase from the chosen source, or None for unencrypted CA keys.

    :raises InputError: when the named variable is unset/empty or the two prompts differ.
    """
    if getattr(args, "ask_passphrase", False):
        first = getpass.getpass("CA key passphrase: ")
        if confirm and getpass.getpass("Repeat the passphrase: ") != first:
            raise InputError(None, "--ask-passphrase", "the same passphrase twice")
        if not first:
            raise InputError(None, "--ask-passphrase", "a non-empty passphrase", "an empty one")
        return first.encode()
    name = getattr(args, "passphrase_env", None)
    if name is not None:
        value = os.environ.get(name)
        if not value:
            raise InputError(None, "--passphrase-env", f"environment variable {name} to hold the passphrase",
                             "unset or empty")
        return value.encode()
    value = os.environ.get(PASSPHRASE_ENV_DEFAULT)
    return value.encode() if value else None


def stdout_is_tty() -> bool:
    """Whether colours and progress are worth printing."""
    return sys.stdout.isatty()
