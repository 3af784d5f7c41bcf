"""Control level changes worth alerting on, with hysteresis so that flapping evidence stays quiet.

A new level is reported only after it has been seen ``confirm_count`` evaluations in a row; the
first evaluation reports every control once (there is no previous level to compare with).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cobot_security.posture.catalog import ControlsCatalog, Priority
from cobot_security.posture.evaluate import ControlResult, is_failing
from cobot_security.status import Level

__all__ = ["Transition", "TransitionFilter", "is_critical_failure"]


@dataclass(frozen=True)
class Transition:
    """A confirmed change of one control's level (``previous`` None on the first evaluation)."""

    control_id: str
    previous: Level | None
    current: Level
    result: ControlResult


@dataclass
class _State:
    confirmed: Level
    candidate: Level | None = None
    count: int = 0


class TransitionFilter:
    """Remembers each control's confirmed level and emits a Transition once a change is confirmed."""

    def __init__(self, confirm_count: int = 2) -> None:
        """``confirm_count`` consecutive sightings of a new level confirm it (1 = no hysteresis).

        :raises ValueError: when ``confirm_count`` is below 1.
        """
        if confirm_count < 1:
            raise ValueError(f"expected confirm_count >= 1, got {confirm_count}")
        self._confirm_count = confirm_count
        self._states: dict[str, _State] = {}

    def update(self, results: Sequence[ControlResult]) -> list[Transition]:
        """Feed one evaluation's results; return the transitions confirmed by it, in input order."""
        transitions: list[Transition] = []
        for result in results:
            state = self._states.get(result.control_id)
            if state is None:
                self._states[result.control_id] = _State(confirmed=result.level)
                transitions.append(Transition(result.control_id, None, result.level, result))
                continue
            if result.level == state.confirmed:
                state.candidate, state.count = None, 0
                continue
            if result.level == state.candidate:
                state.count += 1
            else:
                state.candidate, state.count = result.level, 1
            if state.count >= self._confirm_count:
                transitions.append(Transition(result.control_id, state.confirmed, result.level, result))
                self._states[result.control_id] = _State(confirmed=result.level)
        return transitions


def is_critical_failure(transition: Transition, catalog: ControlsCatalog) -> bool:
    """True when a critical control has just started failing (ERROR/STALE after not failing).

    A control id the catalog does not know is treated as critical: alert loudly rather than miss it.
    """
    control = catalog.get(transition.control_id)
    critical = control is None or control.priority == Priority.CRITICAL
    was_failing = transition.previous is not None and is_failing(transition.previous)
    return critical and is_failing(transition.current) and not was_failing
