"""Reading a user's input file (policy, catalog, sros2 XML) with a size bound and one-line errors.

A path given on the command line may name anything: a directory, ``/dev/zero``, a 10 GB log.  The
readers here never hold more than ``limit`` + 1 bytes, so a hostile or mistaken path costs bounded
memory and time, and every failure is an :class:`~cobot_security.errors.InputError` (or the
subclass the caller names).
"""

from __future__ import annotations

from pathlib import Path

from cobot_security.errors import InputError

__all__ = ["MAX_YAML_BYTES", "decode_input_text", "read_input_bytes", "read_input_text"]

#: Largest YAML document read (1 MiB: a policy of well over a thousand enclaves).
MAX_YAML_BYTES = 1 << 20


def read_input_bytes(path: Path | str, what: str, limit: int, error_type: type[InputError] = InputError,
                     *, regular_only: bool = False) -> bytes:
    """At most ``limit`` bytes of the file at ``path``; ``what`` names it in errors ("policy file").

    ``regular_only`` refuses anything but a regular file (a FIFO or device would block or never end).

    :raises InputError: (of ``error_type``) when the file cannot be read, is not a regular file
        (with ``regular_only``) or holds more than ``limit`` bytes.
    """
    try:
        if regular_only and not Path(path).is_file():
            raise error_type(path, None, f"a regular {what}", "something else (a directory, device or pipe)")
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise error_type(path, None, f"a readable {what}", exc.strerror or type(exc).__name__) from None
    if len(data) > limit:
        raise error_type(path, None, f"a {what} of at most {limit} bytes", "a larger file")
    return data


def read_input_text(path: Path | str, what: str, limit: int, error_type: type[InputError] = InputError) -> str:
    """The UTF-8 text of at most ``limit`` bytes of the file at ``path`` (see :func:`read_input_bytes`).

    :raises InputError: (of ``error_type``) as :func:`read_input_bytes` does, or when the bytes are
        not UTF-8.
    """
    return decode_input_text(read_input_bytes(path, what, limit, error_type), path, error_type)


def decode_input_text(data: bytes, path: Path | str, error_type: type[InputError] = InputError) -> str:
    """``data`` (read from ``path``) as UTF-8 text.

    :raises InputError: (of ``error_type``) naming the offset of the first undecodable byte.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error_type(path, None, "UTF-8 text", f"undecodable byte at offset {exc.start}") from None
