"""Schedule use cases: review, save, enable, disable, remove, and what is due when.

A schedule is a stored definition (:class:`ScheduleDefinition`) like a job;
its targets are the collections that name it. Whether and when it fires is
:mod:`idsync.scheduling.triggers` (pure); the scheduler records what fired.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from idsync.domain.schedules import past_one_time_triggers
from idsync.errors import ConfigError, StateConflictError
from idsync.services import collections, definitions
from idsync.services.review import Review, review
from idsync.services.workspace import Workspace
from idsync.store.definitions_repo import DefinitionRepository
from idsync.store.scheduling_repo import Occurrence, SchedulingRepository
from idsync.store.tables import utcnow

NOUN = "schedule"


@dataclass(frozen=True)
class StoredSchedule:
    """A schedule with what the scheduler needs beside the definition."""

    id: int
    created_at: datetime
    definition: Any


@dataclass(frozen=True)
class ScheduleStatus:
    """A schedule as ``idsync schedule list`` shows it."""

    name: str
    enabled: bool
    triggers: list[str]
    targets: list[str]
    next_run: datetime | None
    last_run: datetime | None
    last_state: str | None
    description: str = ""
    startup: bool = False


@dataclass(frozen=True)
class ScheduleDetail:
    """A schedule as ``idsync schedule show`` shows it."""

    status: ScheduleStatus
    definition: dict[str, Any]
    upcoming: list[datetime] = field(default_factory=list)
    occurrences: list[Occurrence] = field(default_factory=list)


def seconds(value: Any) -> float:
    """A duration of a schedule definition in seconds (a timedelta or a number)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def as_timedelta(value: Any) -> timedelta | None:
    return None if value is None else timedelta(seconds=seconds(value))


def describe_trigger(trigger: Any) -> str:
    """One line saying when a trigger fires."""
    from idsync.scheduling.triggers import describe

    text = describe(trigger)
    return text if trigger.enabled else f"{text} (disabled)"


def render_trigger(field_name: str, item: object) -> str | None:
    """A trigger as one line of a review."""
    if field_name != "triggers" or not isinstance(item, Mapping):
        return None
    from idsync.domain.schedules import Trigger

    try:
        trigger = TypeAdapter(Trigger).validate_python(dict(item))
    except ValueError:
        return None
    return describe_trigger(trigger)


# ---------------------------------------------------------------- definitions


def load_schedule(ws: Workspace, name: str) -> tuple[int, Any]:
    loaded = definitions.load(ws, "schedule", name)
    return loaded.id, loaded.definition


def find_schedule(ws: Workspace, name: str) -> Any | None:
    with ws.db.session() as session:
        stored = DefinitionRepository(session, "schedule").get(name)
    return definitions.parse("schedule", stored.body) if stored is not None else None


def list_schedules(ws: Workspace) -> list[Any]:
    return list(definitions.list_definitions(ws, "schedule"))


def stored_schedules(ws: Workspace) -> list[StoredSchedule]:
    """Every schedule with its id and creation time, by name."""
    with ws.db.session() as session:
        rows = DefinitionRepository(session, "schedule").list()
    return [StoredSchedule(row.id, row.created_at, definitions.parse("schedule", row.body)) for row in rows]


def review_changes(ws: Workspace, schedule: Any) -> Review:
    """What saving *schedule* would do; nothing is saved."""
    return review(NOUN, schedule, find_schedule(ws, schedule.name), render_trigger)


def save_schedule(ws: Workspace, schedule: Any, *, clock: Callable[[], datetime] = utcnow) -> str:
    """Save; returns "created", "updated" or "unchanged". A schedule enabled by
    this save starts afresh: the time it spent disabled holds no missed runs."""
    before = find_schedule(ws, schedule.name)
    check_one_time_ahead(schedule, before, clock())
    outcome = definitions.save(ws, "schedule", schedule)
    if before is not None and not before.enabled and schedule.enabled:
        _restart_cursor(ws, schedule.name, clock())
    return outcome


def check_one_time_ahead(schedule: Any, stored: Any | None, now: datetime) -> None:
    """Refuse a new or changed one-time trigger whose time has passed (see
    :func:`past_one_time_triggers`); one the stored version has is kept."""
    reasons = past_one_time_triggers(schedule, now, stored)
    if reasons:
        raise ConfigError(
            f"schedule {schedule.name!r}: {'; '.join(reasons)}", field="triggers",
            hint="give a start time in the future, or remove the trigger",
        )


def set_enabled(ws: Workspace, name: str, enabled: bool, *, clock: Callable[[], datetime] = utcnow) -> str:
    """Enable or disable schedule *name*; "updated" or "unchanged"."""
    _id, schedule = load_schedule(ws, name)
    changed = type(schedule).model_validate({**schedule.model_dump(), "enabled": enabled})
    return save_schedule(ws, changed, clock=clock)


def _restart_cursor(ws: Workspace, name: str, now: datetime) -> None:
    schedule_id, _definition = load_schedule(ws, name)
    with ws.db.session() as session:
        SchedulingRepository(session).reset_cursor(schedule_id, now)


def targets(ws: Workspace, name: str) -> list[str]:
    """The collections a schedule starts."""
    return [c.name for c in collections.collections_using_schedule(ws, name)]


def check_removable(ws: Workspace, name: str) -> None:
    """StateConflictError naming the collections that still use schedule *name*."""
    used = targets(ws, name)
    if used:
        raise StateConflictError(
            f"schedule {name!r} is used by collection(s) {', '.join(used)}",
            hint="take the schedule off those collections first",
        )


def remove_schedule(ws: Workspace, name: str) -> None:
    """Remove a schedule; refused while a collection uses it."""
    check_removable(ws, name)
    definitions.remove(ws, "schedule", name)


# ---------------------------------------------------------------- when


def upcoming(schedule: Any, after: datetime, count: int = 5) -> list[datetime]:
    """The next *count* due times of a schedule after *after* (aware UTC)."""
    from idsync.scheduling.triggers import next_for_schedule

    out: list[datetime] = []
    moment = after
    while len(out) < count:
        found = next_for_schedule(schedule, moment)
        if found is None:
            break
        out.append(found[0])
        moment = found[0]
    return out


def status(ws: Workspace, *, now: datetime | None = None) -> list[ScheduleStatus]:
    """Every schedule with its next run, last run and targets."""
    now = now or utcnow()
    all_collections = collections.list_collections(ws)
    out = []
    for schedule in list_schedules(ws):
        out.append(_status(ws, schedule, now, [c.name for c in all_collections if c.schedule == schedule.name]))
    return out


def _status(ws: Workspace, schedule: Any, now: datetime, target_names: list[str]) -> ScheduleStatus:
    from idsync.scheduling.triggers import next_for_schedule

    found = next_for_schedule(schedule, now) if schedule.enabled else None
    with ws.db.session() as session:
        last = SchedulingRepository(session).last_started(schedule.name)
    return ScheduleStatus(
        name=schedule.name,
        enabled=schedule.enabled,
        triggers=[describe_trigger(t) for t in schedule.triggers],
        targets=target_names,
        next_run=found[0] if found else None,
        last_run=last[0] if last else None,
        last_state=last[1] if last else None,
        description=schedule.description,
        startup=schedule.enabled and any(t.kind == "startup" and t.enabled for t in schedule.triggers),
    )


def detail(ws: Workspace, name: str, *, now: datetime | None = None, count: int = 5) -> ScheduleDetail:
    """One schedule: definition, status, its next due times and its recent occurrences."""
    now = now or utcnow()
    _id, schedule = load_schedule(ws, name)
    with ws.db.session() as session:
        recent = SchedulingRepository(session).occurrences(name, limit=10)
    return ScheduleDetail(
        status=_status(ws, schedule, now, targets(ws, name)),
        definition=definitions.exportable(ws, "schedule", name),
        upcoming=upcoming(schedule, now, count) if schedule.enabled else [],
        occurrences=recent,
    )
