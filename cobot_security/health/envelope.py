"""The signed health message on the wire: status records, the signature status, the canonical bytes.

A health message is a ``diagnostic_msgs/DiagnosticArray``; here each of its statuses is a
:class:`StatusRecord` (plain values, no ROS).  The sender appends one last status, the *signature
status* ``cobot_security/health_signature/<enclave>``, whose key/values are ``reporter``,
``node``, ``seq``, ``sent_at``, ``certificate`` and ``signature``; the signature covers
:func:`canonical_bytes` of the reporter, node, host, seq, sent_at and every other status in
order.  The format is the contract of docs/health.md ("Wire format"); a change there is a change
here and a new ``CONTEXT``.

:func:`record_to_finding` is the one validation of an incoming status (sizes, level, name, keys).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cobot_security.status import STATUS_PREFIX, Finding, Level, parse_status_name

__all__ = [
    "CONTEXT", "MAX_FIELD_BYTES", "MAX_VALUES", "REPORTER_KEY", "SIGNATURE_CHECK", "SIGNING_CHECK",
    "Envelope", "EnvelopeError", "StatusRecord", "canonical_bytes", "envelope_record", "format_sent_at",
    "may_be_signed", "parse_envelope", "record_to_finding", "split_signed",
]

#: Domain separation string, the first item of the signed bytes (the format's version).
CONTEXT = "cobot_security/health/v1"
#: Check name of the signature status (never a finding: the supervisor never merges it).
SIGNATURE_CHECK = "health_signature"
#: Check name of the ERROR a sender publishes when it cannot sign (its message goes out unsigned).
SIGNING_CHECK = "health_signing"
#: Reserved key naming the publishing node inside each status (informational; identity is the envelope's).
REPORTER_KEY = "reporter"
#: Longest accepted string field of an incoming status (bytes of UTF-8).
MAX_FIELD_BYTES = 4096
#: Most key/values accepted on one incoming status.
MAX_VALUES = 256

_SIGNATURE_PREFIX = f"{STATUS_PREFIX}/{SIGNATURE_CHECK}/"
_ENVELOPE_KEYS = ("reporter", "node", "seq", "sent_at", "certificate", "signature")
_CHECK_RE = re.compile(r"[a-z][a-z0-9_]*")
_KEY_RE = re.compile(r"[a-z][a-z0-9_]*")
_ENCLAVE_RE = re.compile(r"(/[A-Za-z_][A-Za-z0-9_]*)+")
_NODE_RE = re.compile(r"(/[A-Za-z_][A-Za-z0-9_]*)+")
_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_SEQ_RE = re.compile(r"[1-9][0-9]{0,18}")
_SENT_AT_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_B64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
#: A DER ECDSA P-256 signature is at most 72 bytes; an enclave certificate a few hundred.
_MAX_SIGNATURE_B64 = 128
_MAX_CERTIFICATE_B64 = 4096


@dataclass(frozen=True)
class StatusRecord:
    """One ``DiagnosticStatus`` as plain values (``level`` is the raw byte, 0-255)."""

    level: int
    name: str
    message: str
    hardware_id: str
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Envelope:
    """What the signature status claims: who (enclave, node, host), which message, and the proof."""

    reporter: str
    node: str
    host: str
    seq: int
    sent_at: _dt.datetime
    sent_at_text: str
    certificate_der: bytes
    signature: bytes

    @property
    def identity(self) -> str:
        """The reporter identity the supervisor tracks: ``<host><enclave>`` (``cellpc/cobot_security/x``)."""
        return self.host + self.reporter


class EnvelopeError(ValueError):
    """The signature status is absent, misplaced or malformed (``reason`` says which)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def format_sent_at(when: _dt.datetime) -> str:
    """``sent_at`` on the wire: ISO 8601 UTC with microseconds and ``Z`` (``2026-11-29T12:00:00.000000Z``)."""
    return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def may_be_signed(serialized: bytes) -> bool:
    """False when a serialized message cannot hold a signature status (its name is nowhere in the bytes).

    A cheap test before decoding: strings travel as UTF-8 in the serialized message, so an unsigned
    flood is dropped without building a single status object.
    """
    return _SIGNATURE_PREFIX.encode("ascii") in serialized


def _put(out: bytearray, text: str) -> None:
    data = text.encode("utf-8")
    out += len(data).to_bytes(4, "big")
    out += data


def canonical_bytes(reporter: str, node: str, host: str, seq: int, sent_at: str,
                    statuses: Sequence[StatusRecord]) -> bytes:
    """The signed bytes: every item UTF-8, prefixed by its length as 4 bytes big-endian.

    Items: CONTEXT, reporter, node, host, seq (decimal), sent_at, the number of statuses; then per
    status its level (decimal), name, message, hardware_id, the number of key/values and each key
    and value.  Unambiguous, so no two messages share the bytes.

    :raises UnicodeEncodeError: a field is not encodable as UTF-8 (a lone surrogate).
    """
    out = bytearray()
    for item in (CONTEXT, reporter, node, host, str(seq), sent_at, str(len(statuses))):
        _put(out, item)
    for status in statuses:
        for item in (str(status.level), status.name, status.message, status.hardware_id, str(len(status.values))):
            _put(out, item)
        for key, value in status.values:
            _put(out, key)
            _put(out, value)
    return bytes(out)


def envelope_record(reporter: str, node: str, host: str, seq: int, sent_at: str, certificate_der: bytes,
                    signature: bytes) -> StatusRecord:
    """The signature status, appended last to the signed message."""
    values = (("reporter", reporter), ("node", node), ("seq", str(seq)), ("sent_at", sent_at),
              ("certificate", base64.b64encode(certificate_der).decode("ascii")),
              ("signature", base64.b64encode(signature).decode("ascii")))
    return StatusRecord(int(Level.OK), f"{STATUS_PREFIX}/{SIGNATURE_CHECK}{reporter}", f"signed by {reporter}",
                        host, values)


def split_signed(records: Sequence[StatusRecord]) -> tuple[list[StatusRecord], StatusRecord]:
    """(signed statuses, signature status): the signature status must be last and alone.

    :raises EnvelopeError: ``unsigned`` without one, ``bad_signature`` when misplaced or repeated.
    """
    marked = [i for i, record in enumerate(records) if record.name.startswith(_SIGNATURE_PREFIX)]
    if not marked:
        raise EnvelopeError("unsigned", "no health_signature status")
    if marked != [len(records) - 1]:
        raise EnvelopeError("bad_signature", "the health_signature status must be the last and only one")
    return list(records[:-1]), records[-1]


def _b64(text: str, limit: int, field: str) -> bytes:
    if len(text) > limit or not _B64_RE.fullmatch(text):
        raise EnvelopeError("bad_signature", f"{field}: expected base64 of at most {limit} characters")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("bad_signature", f"{field}: expected base64") from None


def parse_envelope(record: StatusRecord) -> Envelope:
    """The fields of a signature status, each checked whole against its format.

    :raises EnvelopeError: (reason ``bad_signature``) a key missing, repeated, extra or malformed.
    """
    fields = dict(record.values)
    if len(fields) != len(record.values) or set(fields) != set(_ENVELOPE_KEYS):
        raise EnvelopeError("bad_signature", f"expected exactly the keys {', '.join(_ENVELOPE_KEYS)}")
    reporter, node, seq, sent_at = fields["reporter"], fields["node"], fields["seq"], fields["sent_at"]
    checks = ((_ENCLAVE_RE, reporter, "reporter"), (_NODE_RE, node, "node"), (_HOST_RE, record.hardware_id, "host"),
              (_SEQ_RE, seq, "seq"), (_SENT_AT_RE, sent_at, "sent_at"))
    for pattern, text, field in checks:
        if len(text) > 1024 or not pattern.fullmatch(text):
            raise EnvelopeError("bad_signature", f"{field}: malformed")
    if record.name != f"{STATUS_PREFIX}/{SIGNATURE_CHECK}{reporter}":
        raise EnvelopeError("bad_signature", "the signature status is not named after its reporter")
    try:
        when = _dt.datetime.strptime(sent_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        raise EnvelopeError("bad_signature", "sent_at: not a date") from None
    return Envelope(reporter=reporter, node=node, host=record.hardware_id, seq=int(seq), sent_at=when,
                    sent_at_text=sent_at,
                    certificate_der=_b64(fields["certificate"], _MAX_CERTIFICATE_B64, "certificate"),
                    signature=_b64(fields["signature"], _MAX_SIGNATURE_B64, "signature"))


def _fits(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        return len(text.encode("utf-8")) <= MAX_FIELD_BYTES
    except UnicodeEncodeError:
        return False


def record_to_finding(record: StatusRecord) -> Finding | None:
    """The Finding an incoming status carries, or None if it is not a valid status of ours.

    Rejected: a level other than 0-3, a name outside ``cobot_security/<check>/<subject>``, a field
    longer than 4 KiB or not UTF-8, more than 256 key/values, keys that are not snake_case.  The
    ``reporter`` key is dropped from the values (the signature status names the reporter).
    """
    if record.level not in (0, 1, 2, 3):
        return None
    if not all(_fits(text) for text in (record.name, record.message, record.hardware_id)):
        return None
    parsed = parse_status_name(record.name)
    if parsed is None:
        return None
    check, subject = parsed
    if not _CHECK_RE.fullmatch(check) or "\x00" in subject or len(record.values) > MAX_VALUES:
        return None
    values = []
    for key, value in record.values:
        if not (_fits(key) and _fits(value)) or not _KEY_RE.fullmatch(key):
            return None
        if key != REPORTER_KEY:
            values.append((key, value))
    return Finding(check=check, subject=subject, level=Level(record.level), message=record.message,
                   values=tuple(values))
