"""The supervisor's health intake: bounded, authenticated, scoped — then merged per reporter.

One incoming message (its statuses as :class:`StatusRecord`) goes through, cheapest first:
the statuses-per-message limit, the signature status, the verifier (time window, replay,
certificate, revocation, signature), the reporter limit, then per status the validation and the
ownership rule.  Whatever fails is counted by reason and dropped; only verified statuses about
subjects the reporter owns reach the :class:`ReporterTracker`, keyed by the verified identity
``<host><enclave>``.  No ROS here: the node hands in records and the time.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cobot_security.health.envelope import EnvelopeError, StatusRecord, parse_envelope, record_to_finding, split_signed
from cobot_security.health.ownership import owned_subjects
from cobot_security.health.verifier import HealthVerifier
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.posture.freshness import ReporterTracker
from cobot_security.status import Finding, Level

__all__ = ["HealthIntake", "INTAKE_CHECK", "IntakeCounts", "MALFORMED_CHECK", "supervisor_findings"]

#: The supervisor's own statuses (published on /diagnostics): ``cobot_security/<check>/supervisor``.
MALFORMED_CHECK = "malformed_messages"
INTAKE_CHECK = "health_intake"
SUPERVISOR_SUBJECT = "supervisor"


@dataclass
class IntakeCounts:
    """What the intake did: messages accepted, and messages / statuses dropped per reason."""

    accepted_messages: int = 0
    accepted_statuses: int = 0
    statuses_received: int = 0
    dropped_messages: Counter[str] = field(default_factory=Counter)
    dropped_statuses: Counter[str] = field(default_factory=Counter)

    @property
    def malformed(self) -> int:
        """Statuses dropped as malformed (invalid inside a message, or the whole message undecodable)."""
        return self.dropped_statuses["malformed"] + self.dropped_messages["undecodable"]

    def as_dict(self) -> dict[str, object]:
        """The counts as get_report shows them."""
        return {"accepted_messages": self.accepted_messages, "accepted_statuses": self.accepted_statuses,
                "dropped_messages": dict(sorted(self.dropped_messages.items())),
                "dropped_statuses": dict(sorted(self.dropped_statuses.items()))}


class HealthIntake:
    """Turns incoming health messages into tracked findings; counts everything it drops."""

    def __init__(self, verifier: HealthVerifier, tracker: ReporterTracker, policy: WorkcellPolicy | None,
                 max_statuses_per_message: int) -> None:
        self.verifier = verifier
        self.tracker = tracker
        self.policy = policy
        self.max_statuses = max_statuses_per_message
        self.counts = IntakeCounts()
        self.last_rejection = ""
        self._ownership: dict[str, Callable[[Finding], bool]] = {}

    def drop_message(self, reason: str, statuses: int = 0, detail: str = "") -> None:
        """Count one message dropped for ``reason`` (with the ``statuses`` it carried)."""
        self.counts.dropped_messages[reason] += 1
        if statuses:
            self.counts.dropped_statuses[reason] += statuses
        if detail:
            self.last_rejection = f"{reason}: {detail}"

    def _owns(self, identity: str, enclave: str, host: str) -> Callable[[Finding], bool]:
        owns = self._ownership.get(identity)
        if owns is None:
            owns = self._ownership[identity] = owned_subjects(self.policy, enclave, host)
        return owns

    def accept(self, records: Sequence[StatusRecord], now: _dt.datetime) -> str | None:
        """Take one message; the reporter identity it was merged under, or None when dropped."""
        self.counts.statuses_received += len(records)
        if len(records) > self.max_statuses:
            self.drop_message("too_many_statuses", len(records), f"{len(records)} > {self.max_statuses}")
            return None
        try:
            signed, signature = split_signed(records)
            envelope = parse_envelope(signature)
        except EnvelopeError as exc:
            self.drop_message(exc.reason, len(records), str(exc))
            return None
        reason, detail = self.verifier.check(envelope, signed, now)
        if reason:
            self.drop_message(reason, len(signed), detail)
            return None
        identity = envelope.identity
        if not self.tracker.has_room_for(identity):
            self.drop_message("reporter_limit", len(signed), f"{identity}: {len(self.tracker)} reporters tracked")
            return None
        self.verifier.commit(envelope)
        owns = self._owns(identity, envelope.reporter, envelope.host)
        findings: list[Finding] = []
        for record in signed:
            finding = record_to_finding(record)
            if finding is None:
                self.counts.dropped_statuses["malformed"] += 1
            elif record.hardware_id != envelope.host or not owns(finding):
                self.counts.dropped_statuses["out_of_scope"] += 1
            else:
                findings.append(finding)
        self.tracker.observe(identity, findings, now)
        self.counts.accepted_messages += 1
        self.counts.accepted_statuses += len(findings)
        return identity

    def forget(self, now: _dt.datetime) -> list[str]:
        """Forget reporters silent past ``forget_after_s`` (after their ERROR), with their replay state."""
        gone = self.tracker.forget(now)
        for identity in gone:
            self.verifier.forget(identity)
            self._ownership.pop(identity, None)
        return gone


def supervisor_findings(intake: HealthIntake, trust_error: str, load_errors: Sequence[str], reporters: int,
                        forgotten: int) -> list[Finding]:
    """The supervisor's own statuses: malformed input and load errors; what the intake dropped and why.

    ``health_intake`` is ERROR without a trust anchor (every message is dropped), WARN once any
    message was dropped, else OK; its values count messages dropped per reason (``dropped_<reason>``).
    """
    counts = intake.counts
    malformed_level = Level.ERROR if load_errors else (Level.WARN if counts.malformed else Level.OK)
    message = f"{counts.malformed} malformed health statuses dropped"
    if load_errors:
        message += "; " + "; ".join(load_errors)
    findings = [Finding(MALFORMED_CHECK, SUPERVISOR_SUBJECT, malformed_level, message,
                        (("malformed_messages", str(counts.malformed)),))]
    dropped = sum(counts.dropped_messages.values())
    values = [("accepted_messages", str(counts.accepted_messages)), ("reporters", str(reporters)),
              ("reporters_forgotten", str(forgotten))]
    values += [(f"dropped_{reason}", str(n)) for reason, n in sorted(counts.dropped_messages.items())]
    values += [(f"dropped_statuses_{reason}", str(n)) for reason, n in sorted(counts.dropped_statuses.items())]
    if trust_error:
        level, text = Level.ERROR, f"cannot verify health messages, all are dropped: {trust_error}"
    elif dropped:
        level, text = Level.WARN, f"{dropped} health messages dropped (last: {intake.last_rejection})"
    else:
        level, text = Level.OK, f"{counts.accepted_messages} signed health messages accepted, none dropped"
    findings.append(Finding(INTAKE_CHECK, SUPERVISOR_SUBJECT, level, text, tuple(values)))
    return findings
