"""Reconcile a keystore (actual state) with the workcell policy (desired state).

:func:`plan_reconcile` is a pure decision: it reads the keystore and returns the smallest set of
changes (create missing enclaves, re-sign permissions whose policy entry changed, rotate
certificates inside their renew window, re-issue a CRL that is due) plus the enclaves the policy no
longer names, which are only reported: revoking them is an explicit operator action, never a side
effect of reconciling.  :func:`apply_reconcile` carries a plan out, one atomic change at a time,
and :func:`reconcile_findings` turns the result into health findings for the keystore_manager node.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from cobot_security.clock import days_left, iso_utc
from cobot_security.errors import CobotSecurityError
from cobot_security.keystore.manifest import grant_changed
from cobot_security.keystore.revocation import crl_status, refresh_crl
from cobot_security.keystore.rotation import (
    RotationFailed,
    RotationItem,
    plan_rotation,
    resign_enclaves,
    rotate_enclaves,
)
from cobot_security.keystore.store import Keystore
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding, Level

CREATE = "create"
ROTATE = "rotate"
RESIGN = "resign"
CRL_REFRESH = "crl_refresh"
ORPHAN = "orphan"
#: Every action kind, in the order a plan lists and applies them.
ACTION_KINDS: tuple[str, ...] = (CREATE, RESIGN, ROTATE, CRL_REFRESH, ORPHAN)

#: Health check names published by the keystore_manager (``cobot_security/<check>/<enclave>``).
CERT_ROTATION = "cert_rotation"
RESTART_REQUIRED = "restart_required"
KEYSTORE_MANAGER = "keystore_manager"

#: The subject of keystore-wide actions and findings (the CRL, manager errors).
KEYSTORE_SUBJECT = "/keystore"

# Which rotation reason becomes which action (rotation.py decides *whether*, we decide *how*).
_KIND_OF_REASON = {"missing": CREATE, "policy_changed": RESIGN, "due": ROTATE, "requested": ROTATE,
                   "unreadable": ROTATE}


@dataclass(frozen=True)
class Action:
    """One planned change: ``kind`` (see :data:`ACTION_KINDS`), its enclave and why."""

    kind: str
    enclave: str
    reason: str


@dataclass(frozen=True)
class CertificateState:
    """An enclave's certificate as found on disk (``not_after`` None when there is none)."""

    enclave: str
    not_after: _dt.datetime | None
    days_left: int | None
    in_policy: bool


@dataclass(frozen=True)
class ReconcilePlan:
    """The changes that would make the keystore match the policy at ``now``."""

    now: _dt.datetime
    actions: tuple[Action, ...]
    certificates: tuple[CertificateState, ...] = ()
    rotation: tuple[RotationItem, ...] = field(default=(), compare=False)
    crl_next_update: _dt.datetime | None = None

    @property
    def empty(self) -> bool:
        """True when the keystore already matches the policy (nothing to do, nothing to report)."""
        return not self.actions

    def of_kind(self, kind: str) -> tuple[Action, ...]:
        """The actions of one kind, in plan order."""
        return tuple(a for a in self.actions if a.kind == kind)

    def action_for(self, enclave: str) -> Action | None:
        """The (single) enclave action planned for ``enclave``, if any."""
        for action in self.actions:
            if action.enclave == enclave and action.kind != CRL_REFRESH:
                return action
        return None

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view (ISO 8601 UTC times) for services and ``--json`` output."""
        return {
            "now": _iso_or_none(self.now),
            "actions": [{"kind": a.kind, "enclave": a.enclave, "reason": a.reason} for a in self.actions],
            "certificates": [
                {"enclave": c.enclave, "not_after": _iso_or_none(c.not_after), "days_left": c.days_left,
                 "in_policy": c.in_policy}
                for c in self.certificates
            ],
            "crl_next_update": _iso_or_none(self.crl_next_update),
        }


@dataclass(frozen=True)
class ReconcileOutcome:
    """What :func:`apply_reconcile` did; ``failures`` pairs a subject with the error's message."""

    created: tuple[str, ...] = ()
    resigned: tuple[str, ...] = ()
    rotated: tuple[str, ...] = ()
    deferred: tuple[str, ...] = ()  #: due for rotation but rotation was not allowed
    crl_refreshed: bool = False
    orphans: tuple[str, ...] = ()
    failures: tuple[tuple[str, str], ...] = ()

    @property
    def restart_required(self) -> tuple[str, ...]:
        """Enclaves whose running nodes must restart to load new credentials."""
        return self.resigned + self.rotated

    @property
    def changed(self) -> bool:
        """True when anything was written to the keystore."""
        return bool(self.created or self.resigned or self.rotated or self.crl_refreshed)

    def failure(self, subject: str) -> str | None:
        """The error message recorded for ``subject``, if its change failed."""
        for name, message in self.failures:
            if name == subject:
                return message
        return None


def _iso_or_none(value: _dt.datetime | None) -> str | None:
    return None if value is None else iso_utc(value)


def plan_reconcile(keystore: Keystore, policy: WorkcellPolicy, now: _dt.datetime) -> ReconcilePlan:
    """Compare ``keystore`` with ``policy`` at ``now`` and list the changes needed; writes nothing.

    :raises KeystoreError: the keystore cannot be read (a certificate or our manifest is corrupt).
    """
    items = plan_rotation(keystore, policy, now)
    manifest = keystore.manifest()
    actions: list[Action] = []
    for item in items:
        kind, reason = _KIND_OF_REASON.get(item.reason, ROTATE), item.reason
        enclave = policy.enclave(item.enclave)
        if kind == ROTATE and item.reason == "due" and enclave is not None and grant_changed(
                keystore.layout, manifest, policy, enclave):
            # Due *and* changed: the re-sign must not wait for rotation to be allowed.
            kind, reason = RESIGN, "policy_changed (also due)"
        actions.append(Action(kind, item.enclave, reason))
    on_disk = {info.path: info for info in keystore.list_enclaves()}
    wanted = {enclave.path for enclave in policy.enclaves}
    certificates = [
        CertificateState(path, on_disk[path].not_after if path in on_disk else None,
                         days_left(on_disk[path].not_after, now) if path in on_disk else None, path in wanted)
        for path in sorted(wanted | set(on_disk))
    ]
    for path in sorted(set(on_disk) - wanted):
        actions.append(Action(ORPHAN, path, "not named by the policy (revoke explicitly if retired)"))
    crl = crl_status(keystore.layout, now)
    if crl.due:
        actions.append(Action(CRL_REFRESH, KEYSTORE_SUBJECT,
                              "missing" if not crl.present else f"next update {_iso_or_none(crl.next_update)}"))
    order = {kind: index for index, kind in enumerate(ACTION_KINDS)}
    actions.sort(key=lambda a: (order[a.kind], a.enclave))
    return ReconcilePlan(now=now, actions=tuple(actions), certificates=tuple(certificates),
                         rotation=tuple(items), crl_next_update=crl.next_update)


def _rotate_each(keystore: Keystore, policy: WorkcellPolicy, items: list[RotationItem], now: _dt.datetime,
                 failures: list[tuple[str, str]]) -> list[str]:
    """Rotate ``items`` in as few transactions as possible; a failing one is recorded and skipped."""
    done: list[str] = []
    while items:
        try:
            done += [r.enclave for r in rotate_enclaves(keystore, policy, items, now)]
            break
        except RotationFailed as exc:
            done += [r.enclave for r in exc.completed]
            failures.append((exc.enclave, str(exc)))
            items = items[[i.enclave for i in items].index(exc.enclave) + 1:]
        except CobotSecurityError as exc:  # lock held, passphrase...: every remaining one failed
            failures += [(i.enclave, str(exc)) for i in items]
            break
    return done


def apply_reconcile(
    keystore: Keystore, policy: WorkcellPolicy, plan: ReconcilePlan, now: _dt.datetime, *, allow_rotate: bool
) -> ReconcileOutcome:
    """Carry out ``plan``: create, re-sign, rotate (due ones only with ``allow_rotate``), refresh the CRL.

    Re-signing keeps an enclave's key and certificate and signs its new grant; creating and
    rotating issue new ones.  Each runs as one keystore transaction per kind; an enclave that fails
    is recorded in ``failures`` and the others still run.  Orphans are only reported.

    Errors of one change (lock held, disk refused...) are recorded, never raised.
    """
    failures: list[tuple[str, str]] = []
    deferred: list[str] = []
    by_kind: dict[str, list[RotationItem]] = {CREATE: [], RESIGN: [], ROTATE: []}
    for item in plan.rotation:
        action = plan.action_for(item.enclave)
        kind = action.kind if action is not None else _KIND_OF_REASON.get(item.reason, ROTATE)
        if kind == ROTATE and item.reason in ("due", "unreadable") and not allow_rotate:
            deferred.append(item.enclave)
            continue
        by_kind.setdefault(kind, []).append(item)
    created = _rotate_each(keystore, policy, by_kind[CREATE], now, failures)
    resigned: list[str] = []
    if by_kind[RESIGN]:
        try:
            resigned = resign_enclaves(keystore, policy, [i.enclave for i in by_kind[RESIGN]], now)
        except CobotSecurityError as exc:
            failures += [(i.enclave, str(exc)) for i in by_kind[RESIGN]]
    rotated = _rotate_each(keystore, policy, by_kind[ROTATE], now, failures)
    crl_refreshed = False
    if plan.of_kind(CRL_REFRESH):
        try:
            crl_refreshed = bool(refresh_crl(keystore, now, policy, force=False))
        except CobotSecurityError as exc:
            failures.append((KEYSTORE_SUBJECT, str(exc)))
    return ReconcileOutcome(
        created=tuple(created),
        resigned=tuple(resigned),
        rotated=tuple(rotated),
        deferred=tuple(deferred),
        crl_refreshed=crl_refreshed,
        orphans=tuple(a.enclave for a in plan.of_kind(ORPHAN)),
        failures=tuple(failures),
    )


def _cert_values(cert: CertificateState, state: str) -> tuple[tuple[str, str], ...]:
    return (
        ("enclave", cert.enclave),
        ("not_after", _iso_or_none(cert.not_after) or ""),
        ("days_left", "" if cert.days_left is None else str(cert.days_left)),
        ("state", state),
    )


def _certificate_finding(cert: CertificateState, plan: ReconcilePlan, outcome: ReconcileOutcome | None) -> Finding:
    action = plan.action_for(cert.enclave)
    failure = outcome.failure(cert.enclave) if outcome is not None else None
    expired = cert.days_left is not None and cert.not_after is not None and cert.not_after <= plan.now
    if outcome is not None and cert.enclave in outcome.restart_required:
        state, level, message = "rotated", Level.OK, f"re-issued; valid for {cert.days_left} more days"
    elif action is not None and action.kind == ORPHAN:
        state, level, message = "orphan", Level.WARN, "enclave on disk that the policy no longer names"
    elif cert.not_after is None or (action is not None and action.kind == CREATE):
        state, level, message = "missing", Level.ERROR, "enclave named by the policy is missing from the keystore"
    elif action is not None:
        state = "due"
        level = Level.ERROR if expired else Level.WARN
        if action.kind == RESIGN:
            message = "policy entry changed: permissions must be re-signed"
        elif expired:
            message = f"certificate expired {_iso_or_none(cert.not_after)}"
        else:
            message = f"certificate due for rotation: {cert.days_left} days left"
    elif expired:
        state, level, message = "due", Level.ERROR, f"certificate expired {_iso_or_none(cert.not_after)}"
    else:
        state, level, message = "ok", Level.OK, f"{cert.days_left} days left"
    if outcome is not None and cert.enclave in outcome.created:
        message = "created now; " + message
    if failure is not None:
        level, message = Level.ERROR, f"{message}; change failed: {failure}"
    return Finding(CERT_ROTATION, cert.enclave, level, message, _cert_values(cert, state))


def reconcile_findings(
    policy: WorkcellPolicy, plan: ReconcilePlan, outcome: ReconcileOutcome | None = None
) -> list[Finding]:
    """Per-enclave ``cert_rotation`` findings, then ``restart_required`` for every re-issued enclave.

    ``plan`` should describe the keystore as it is now (re-plan after applying); ``outcome`` says
    what was just changed.  A ``restart_required`` finding (WARN) names the enclave's node FQNs
    from the policy, which is what a launch file's rolling restart waits for.
    """
    findings = [_certificate_finding(cert, plan, outcome) for cert in plan.certificates]
    if outcome is not None:
        findings += [restart_finding(policy, path) for path in outcome.restart_required]
        crl_failure = outcome.failure(KEYSTORE_SUBJECT)
        if crl_failure is not None:
            findings.append(Finding(KEYSTORE_MANAGER, KEYSTORE_SUBJECT, Level.ERROR,
                                    f"CRL refresh failed: {crl_failure}"))
    return findings


def restart_finding(policy: WorkcellPolicy, path: str) -> Finding:
    """``restart_required`` (WARN) for enclave ``path``, naming its node FQNs from the policy."""
    enclave = policy.enclave(path)
    nodes = ",".join(node.fqn for node in enclave.nodes) if enclave is not None else ""
    return Finding(RESTART_REQUIRED, path, Level.WARN,
                   f"credentials of {path} re-issued: restart {nodes or 'its nodes'}",
                   (("enclave", path), ("nodes", nodes)))


def manager_error(message: str) -> Finding:
    """The ERROR finding published while the manager cannot reconcile (bad keystore, lock held...)."""
    return Finding(KEYSTORE_MANAGER, KEYSTORE_SUBJECT, Level.ERROR, message)
