"""Schedule use cases: review, save, enable, disable, remove, and what is due when.

A schedule is a stored definition (:class:`ScheduleDefinition`) like a job;
its targets are the collections that name it. Whether and when it fires is
:mod:`idsync.scheduling.triggers` (pure); the scheduler records what fired.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from idsync.domain.schedules import past_one_time_triggers
from idsync.errors import ConfigError, StateConflictError, quoted
from idsync.scheduling.describe import moment_in_zone
from idsync.services import authz, collections, definitions
from idsync.services.review import Review, review
from idsync.services.workspace import Workspace
from idsync.store.definitions_repo import DefinitionRepository
from idsync.store.scheduling_repo import Occurrence, SchedulingRepository
from idsync.store.tables import utcnow

log = logging.getLogger(__name__)

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
    next_run_text: str = ""
    """The next run in its trigger's zone, named: ``2027-01-05 02:00 CET``."""


@dataclass(frozen=True)
class ScheduleDetail:
    """A schedule as ``idsync schedule show`` shows it."""

    status: ScheduleStatus
    definition: dict[str, Any]
    upcoming: list[datetime] = field(default_factory=list)
    occurrences: list[Occurrence] = field(default_factory=list)
    upcoming_text: list[str] = field(default_factory=list)
    """:attr:`upcoming`, each in the zone of the trigger that fires it, named."""
    occurrence_times: list[str] = field(default_factory=list)
    """When each of :attr:`occurrences` was due, in its trigger's zone, named."""
    since: datetime | None = None
    """The instant :attr:`upcoming` starts from (now, unless another was asked for)."""
    since_text: str = ""
    """:attr:`since` in the schedule's zone, named."""


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
    authz.require_reader(ws, "schedules")
    with ws.db.session() as session:
        stored = DefinitionRepository(session, "schedule").get(name)
    return definitions.parse("schedule", stored.body) if stored is not None else None


def list_schedules(ws: Workspace) -> list[Any]:
    return list(definitions.list_definitions(ws, "schedule"))


_UNUSABLE_REPORTED: set[tuple[str, str]] = set()
"""Stored schedules already reported as unusable by this process, with why."""


def stored_schedules(ws: Workspace) -> list[StoredSchedule]:
    """Every usable schedule with its id and creation time, by name.

    A stored schedule this idsync no longer accepts (saved by a version with
    other rules) is left out, and reported once per process, so that one bad
    schedule never stops the others from firing.
    """
    authz.require_reader(ws, "schedules")
    with ws.db.session() as session:
        rows = DefinitionRepository(session, "schedule").list()
    usable = []
    for row in rows:
        try:
            usable.append(StoredSchedule(row.id, row.created_at, definitions.parse("schedule", row.body)))
        except ConfigError as exc:
            if (row.name, exc.message) not in _UNUSABLE_REPORTED:
                _UNUSABLE_REPORTED.add((row.name, exc.message))
                log.warning("schedule %r does not fire until it is saved again: %s", row.name, exc.message)
    return usable


def review_changes(ws: Workspace, schedule: Any) -> Review:
    """What saving *schedule* would do; nothing is saved."""
    return review(NOUN, schedule, find_schedule(ws, schedule.name), render_trigger)


def save_schedule(
    ws: Workspace, schedule: Any, *, clock: Callable[[], datetime] = utcnow, based_on: Collection[str] | None = None,
) -> str:
    """Save; returns "created", "updated" or "unchanged". A schedule enabled by
    this save starts afresh: the time it spent disabled holds no missed runs."""
    before = find_schedule(ws, schedule.name)
    check_one_time_ahead(schedule, before, clock())
    outcome = definitions.save(ws, "schedule", schedule, based_on=based_on)
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
    return [at for at, _index in upcoming_due(schedule, after, count)]


def upcoming_due(schedule: Any, after: datetime, count: int = 5) -> list[tuple[datetime, int]]:
    """The next *count* due times of a schedule after *after* (aware UTC),
    each with the index of the trigger that fires it."""
    from idsync.scheduling.triggers import next_for_schedule

    out: list[tuple[datetime, int]] = []
    moment = after
    while len(out) < count:
        found = next_for_schedule(schedule, moment)
        if found is None:
            break
        out.append(found)
        moment = found[0]
    return out


def zone_of(schedule: Any, index: int | None = None) -> str:
    """The time zone of trigger *index* of *schedule* (1-based in text,
    0-based here); with no index, or one that names no trigger (a run-now
    occurrence), the zone of its first trigger; UTC for a schedule without."""
    triggers = schedule.triggers
    if index is not None and 0 <= index < len(triggers):
        return str(triggers[index].timezone)
    return str(triggers[0].timezone) if triggers else "UTC"


def due_text(schedule: Any, at: datetime, index: int | None = None) -> str:
    """*at* as the schedule shows it: in the zone of the trigger, named."""
    return moment_in_zone(at, zone_of(schedule, index))


def parse_instant(text: str, schedule: Any) -> datetime:
    """An instant typed by a person (``2027-01-04``, ``2027-01-04T02:00``, or
    with an offset ``...+01:00``), aware UTC. Without an offset it is a wall
    clock time in the schedule's zone (that of its first trigger)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(
            f"{quoted(text)} is not an instant", field="from",
            hint="give YYYY-MM-DD or YYYY-MM-DDTHH:MM, optionally with an offset such as +01:00",
        ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone_of(schedule)))
    return value.astimezone(UTC)


def status(ws: Workspace, *, now: datetime | None = None) -> list[ScheduleStatus]:
    """Every schedule with its next run, last run and targets."""
    authz.require_reader(ws, "schedules")
    now = now or utcnow()
    all_collections = collections.list_collections(ws)
    out = []
    for schedule in list_schedules(ws):
        out.append(_status(ws, schedule, now, [c.name for c in all_collections if c.schedule == schedule.name]))
    return out


def _status(ws: Workspace, schedule: Any, now: datetime, target_names: list[str]) -> ScheduleStatus:
    from idsync.scheduling.triggers import next_for_schedule

    found = next_for_schedule(schedule, now) if schedule.enabled else None
    next_text = due_text(schedule, found[0], found[1]) if found else ""
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
        next_run_text=next_text,
    )


def detail(
    ws: Workspace, name: str, *, now: datetime | None = None, count: int = 5, since: str | datetime | None = None
) -> ScheduleDetail:
    """One schedule: definition, status, its next due times and its recent occurrences.

    *since* (an instant, or text as :func:`parse_instant` reads it) lists the
    due times from that instant on, included, instead of from now: what the
    schedule would do next week, or did on a past night."""
    now = now or utcnow()
    _id, schedule = load_schedule(ws, name)
    start = parse_instant(since, schedule) if isinstance(since, str) else since
    with ws.db.session() as session:
        recent = SchedulingRepository(session).occurrences(name, limit=10)
    due = (
        upcoming_due(schedule, start - timedelta(microseconds=1) if start else now, count)
        if schedule.enabled or start is not None else []
    )
    return ScheduleDetail(
        status=_status(ws, schedule, now, targets(ws, name)),
        definition=definitions.exportable(ws, "schedule", name),
        upcoming=[at for at, _index in due],
        occurrences=recent,
        upcoming_text=[due_text(schedule, at, index) for at, index in due],
        occurrence_times=[due_text(schedule, o.due_at, o.trigger_index) for o in recent],
        since=start or now,
        since_text=due_text(schedule, start or now),
    )
