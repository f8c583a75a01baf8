"""Which notification triggers fire for a finished run.

The decision is a pure function of the run (a :class:`RunEvent`) and the
state of the collection's previous finished run, so it is tested as a table
of outcomes without any server. The seed's four triggers come first; the
three after them extend the seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from idsync.domain.results import RunState
from idsync.errors import ConfigError
from idsync.notify.events import RunEvent

TRIGGERS: tuple[str, ...] = (
    "always",
    "records_updated",
    "errors",
    "failed",
    "recovered",
    "missed",
    "held",
)
"""Every trigger, in the order messages are produced for one run."""

HEADLINE_ORDER: tuple[str, ...] = ("failed", "held", "errors", "missed", "recovered", "records_updated", "always")
"""The triggers from the most pressing: a message leads with the first of those that fired."""

TRIGGER_MEANINGS: dict[str, str] = {
    "always": "every finished run, whatever its outcome",
    "records_updated": "records were created, updated, deleted, disabled or moved, or a membership changed",
    "errors": "one or more record errors or conflicts, and the run did not fail",
    "failed": "a fatal error: the run could not complete",
    "recovered": "the run succeeded (or completed with errors) after the previous run failed",
    "missed": "scheduled runs did not start because no scheduler was running",
    "held": "a job of the run is held: it wrote nothing and waits for a decision (a safety limit)",
}
"""One line per trigger, for documentation and the command line."""

_RECOVERED_FROM = frozenset({RunState.FAILED.value})
_RECOVERED_TO = frozenset({RunState.SUCCEEDED.value, RunState.COMPLETED_WITH_ERRORS.value})
_UNFINISHED = frozenset(state.value for state in RunState if not state.finished)


def _always(event: RunEvent, previous: str | None) -> bool:
    return event.state not in _UNFINISHED


def _records_updated(event: RunEvent, previous: str | None) -> bool:
    return event.records_changed > 0


def _errors(event: RunEvent, previous: str | None) -> bool:
    return event.record_errors > 0 and event.state != RunState.FAILED.value


def _failed(event: RunEvent, previous: str | None) -> bool:
    return event.state == RunState.FAILED.value


def _recovered(event: RunEvent, previous: str | None) -> bool:
    return event.state in _RECOVERED_TO and previous in _RECOVERED_FROM


def _missed(event: RunEvent, previous: str | None) -> bool:
    return event.state == RunState.MISSED.value or event.missed > 0


def _held(event: RunEvent, previous: str | None) -> bool:
    # A collection finishes even when one of its jobs is held by a safety limit:
    # that job waiting for a decision is what this trigger is about.
    held = RunState.HELD.value
    return event.state == held or any(job.state == held for job in event.jobs)


_RULES: dict[str, Callable[[RunEvent, str | None], bool]] = {
    "always": _always,
    "records_updated": _records_updated,
    "errors": _errors,
    "failed": _failed,
    "recovered": _recovered,
    "missed": _missed,
    "held": _held,
}


def check_triggers(triggers: Iterable[str]) -> list[str]:
    """The trigger names as given; ConfigError naming the first unknown one."""
    names = list(triggers)
    for name in names:
        if name not in _RULES:
            raise ConfigError(f"unknown notification trigger {name!r}: choose from {', '.join(TRIGGERS)}")
    return names


def fired(triggers: Iterable[str], event: RunEvent, previous_state: str | None) -> list[str]:
    """The configured *triggers* that fire for *event*, in :data:`TRIGGERS` order, each once.

    *previous_state* is the state of the collection's previous finished run
    (None for its first run); only ``recovered`` looks at it. A run still
    going fires nothing.
    """
    wanted = set(check_triggers(triggers))
    if event.state in _UNFINISHED:
        return []
    return [name for name in TRIGGERS if name in wanted and _RULES[name](event, previous_state)]
