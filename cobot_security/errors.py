"""The package's one error tree: every failure a user can meet is one of these, with actionable text.

Messages read ``<file>:<line>: <field>: expected X, got Y`` where those facts exist.  They never
carry key material or passphrases.  The CLI maps ``exit_code`` to the process exit status.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Longest part (file, field, expectation, found value) shown in a message; longer ones are clipped.
MAX_PART_LENGTH = 200
#: Characters that would break the one-line message: C0/C1 controls and Unicode line separators.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` safe inside a one-line message: control characters escaped, clipped to
    :data:`MAX_PART_LENGTH` characters (a hostile name may hold a newline or a megabyte)."""
    escaped = _UNPRINTABLE.sub(lambda m: repr(m.group(0))[1:-1], text)
    if len(escaped) > MAX_PART_LENGTH:
        escaped = escaped[:MAX_PART_LENGTH] + f"...({len(escaped)} characters)"
    return escaped


class CobotSecurityError(Exception):
    """Base of all errors raised by cobot_security; ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class InputError(CobotSecurityError):
    """Bad input (file content, name, flag): exit 2, one line naming file, line, field, expectation."""

    exit_code = 2

    def __init__(
        self,
        file: str | Path | None,
        field: str | None,
        expected: str,
        got: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.field = field
        self.expected = expected
        self.got = got
        self.line = line
        super().__init__(self._render())

    def __reduce__(self) -> tuple[type[InputError], tuple[object, ...]]:
        """Pickle by the constructor's arguments (an error raised in a worker process crosses back intact)."""
        return type(self), (self.file, self.field, self.expected, self.got, self.line)

    def _render(self) -> str:
        where = ""
        if self.file is not None:
            where = one_line(self.file) + (f":{self.line}" if self.line is not None else "") + ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        field = f"{one_line(self.field)}: " if self.field else ""
        got = f", got {one_line(self.got)}" if self.got is not None else ""
        return f"{where}{field}expected {one_line(self.expected)}{got}"


class PolicyError(InputError):
    """The workcell policy (YAML or imported sros2 XML) is malformed or inconsistent."""


class InvalidNameError(InputError):
    """A ROS or enclave name breaks the naming rules (absolute, no '..', ROS characters)."""


class KeystoreError(CobotSecurityError):
    """The keystore is missing, unreadable, inconsistent or would be overwritten; exit 2."""

    exit_code = 2

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{one_line(self.path)}: {one_line(problem)}")

    def __reduce__(self) -> tuple[type[KeystoreError], tuple[object, ...]]:
        """Pickle by the constructor's arguments (subclasses with other constructors do not cross processes)."""
        return type(self), (self.path, self.problem)


class PassphraseError(KeystoreError):
    """A CA private key could not be decrypted with the passphrase given (or none was given)."""


class LockError(KeystoreError):
    """Another process holds the keystore lock and did not release it in time."""


class DdsUnavailableError(CobotSecurityError):
    """Cyclone DDS or its DDS Security plugins cannot be loaded, so enforcement cannot be proven."""

    exit_code = 1


class VerificationFailed(CobotSecurityError):
    """DDS Security verification ran and found a false allow or a false deny; exit 1."""

    exit_code = 1
