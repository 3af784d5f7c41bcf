"""The package's one error tree: every failure a user can meet is one of these, with actionable text.

Messages read ``<file>:<line>: <field>: expected X, got Y`` where those facts exist.  They never
carry key material or passphrases.  The CLI maps ``exit_code`` to the process exit status.
"""

from __future__ import annotations

from pathlib import Path


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
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        field = f"{self.field}: " if self.field else ""
        got = f", got {self.got}" if self.got is not None else ""
        return f"{where}{field}expected {self.expected}{got}"


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
        super().__init__(f"{self.path}: {problem}")

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
