"""A schedule's occurrence and the runs it starts, written in one transaction.

The occurrence row is inserted first, with "on conflict do nothing" on
(schedule, trigger, due time): the node whose insert goes in owns it. In
the same transaction each target collection's run is created and claimed
for this node, or queued or skipped by the collection's overlap rule
(:func:`~idsync.services.collection_runs.start_in`); occurrences found too
late are recorded with one *missed* run per target. Nothing is committed
until all of it is written, so a scheduler that dies on the way

- before the commit leaves nothing: the next tick sees the occurrence again
  and fires it (within the schedule's grace) or records it missed;
- after the commit leaves the occurrence with its runs, claimed under this
  node's lease: the lease runs out and any scheduler marks them failed
  (node lost), and the occurrence is not fired again.

An occurrence is never recorded without its runs, nor started twice. The
caller hands the running runs to its executor once these functions return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from idsync.domain.collections import CollectionDefinition
from idsync.errors import IdsyncError, StateConflictError
from idsync.services import collection_runs, collections, schedules
from idsync.services.collection_runs import Runtime, Started
from idsync.services.schedules import StoredSchedule
from idsync.services.workspace import Workspace
from idsync.store.scheduling_repo import SchedulingRepository

RUN_NOW_TRIGGER = -1
"""The trigger index of occurrences recorded by "run now"."""

MISSED_ROWS = 1000
"""At most this many missed occurrences of one schedule are recorded as rows
per look (the latest ones); the missed run's reason gives the full count."""


@dataclass(frozen=True)
class Due:
    """An occurrence to record: a schedule's trigger (-1 for "run now") at a
    due time, in a state (fired, run-now)."""

    schedule_id: int
    schedule_name: str
    trigger_index: int
    due_at: datetime
    state: str


@dataclass(frozen=True)
class Fired:
    """An occurrence recorded by this node, with the runs it started (running,
    queued or skipped) and a line for each target that could not be started."""

    occurrence_id: int
    started: list[Started] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Missed:
    """Missed occurrences recorded by this node: how many, the reason written
    on each target's missed run, and the runs started to catch up."""

    count: int
    reason: str
    caught_up: bool = False
    started: list[Started] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)


def fire(
    ws: Workspace,
    runtime: Runtime,
    due: Due,
    targets: Sequence[str],
    *,
    trigger: str,
    requested_by: str | None = None,
    stop_after: timedelta | None = None,
) -> Fired | None:
    """Record occurrence *due* and start a run of each collection in *targets*,
    in one transaction; None when the occurrence was recorded already
    (another node, or an earlier tick, owns it)."""
    loaded, not_started = _load(ws, targets)
    with ws.db.session() as session:
        occurrence = SchedulingRepository(session, clock=runtime.clock).insert_occurrence(
            schedule_id=due.schedule_id,
            schedule_name=due.schedule_name,
            trigger_index=due.trigger_index,
            due_at=due.due_at,
            state=due.state,
            node=runtime.node,
        )
        if occurrence is None:
            return None
        started = [
            collection_runs.start_in(
                session, collection_id, collection, runtime, trigger=trigger,
                requested_by=requested_by if requested_by is not None else ws.actor,
                occurrence_id=occurrence, stop_after=stop_after,
            )
            for collection_id, collection in loaded
        ]
    return Fired(occurrence, started, not_started)


def run_now(ws: Workspace, runtime: Runtime, schedule_id: int, schedule_name: str, targets: Sequence[str]) -> Fired:
    """Start every collection in *targets* now for schedule *schedule_name*,
    recorded as an occurrence of trigger :data:`RUN_NOW_TRIGGER` due now (so
    the schedule shows it as its last run), in one transaction."""
    due = Due(schedule_id, schedule_name, RUN_NOW_TRIGGER, runtime.clock(), "run-now")
    fired = fire(ws, runtime, due, targets, trigger="run-now")
    if fired is None:
        raise StateConflictError(
            f"schedule {schedule_name!r} was already run now at {due.due_at:%Y-%m-%d %H:%M:%S.%f} UTC",
            hint="ask again in a moment",
        )
    return fired


def record_missed(
    ws: Workspace,
    runtime: Runtime,
    stored: StoredSchedule,
    missed: Sequence[tuple[datetime, int]],
    targets: Sequence[str],
    *,
    catch_up: bool,
) -> Missed | None:
    """Record the occurrences of *stored* found later than its grace (*missed*:
    due time and trigger index, oldest first) in one transaction: a row each
    (the latest :data:`MISSED_ROWS`), one *missed* run per target naming them
    and, with misfire ``run_once`` and *catch_up* (nothing on time in the same
    look), a run of each target now, started by the node that recorded the
    latest. None when another node recorded them all."""
    schedule = stored.definition
    total = len(missed)
    kept = list(missed)[-MISSED_ROWS:]
    loaded, not_started = _load(ws, targets)
    with ws.db.session() as session:
        repo = SchedulingRepository(session, clock=runtime.clock)
        owned: list[tuple[int, datetime, int]] = []
        for at, index in kept:
            occurrence = repo.insert_occurrence(
                schedule_id=stored.id,
                schedule_name=schedule.name,
                trigger_index=index,
                due_at=at,
                state="missed",
                node=runtime.node,
            )
            if occurrence is not None:
                owned.append((occurrence, at, index))
        if not owned:
            return None
        count = len(owned) + (total - len(kept) if owned[0][1] == kept[0][0] else 0)
        reason = _missed_reason(schedule, owned, count, catch_up=catch_up)
        latest, _at, latest_index = owned[-1]
        for collection_id, collection in loaded:
            collection_runs.record_missed(session, ws, collection_id, collection.name, latest, reason, runtime)
        started: list[Started] = []
        caught_up = schedule.misfire == "run_once" and catch_up and owned[-1][1] == kept[-1][0]
        if caught_up:
            stop_after = schedules.as_timedelta(getattr(schedule.triggers[latest_index], "stop_after", None))
            started = [
                collection_runs.start_in(
                    session, collection_id, collection, runtime, trigger="misfire",
                    requested_by=f"schedule {schedule.name}", occurrence_id=latest, stop_after=stop_after,
                )
                for collection_id, collection in loaded
            ]
    return Missed(count, reason, caught_up, started, not_started)


def _load(ws: Workspace, targets: Sequence[str]) -> tuple[list[tuple[int, CollectionDefinition]], list[str]]:
    """The target collections as stored now (read before the transaction
    begins), and a line for each that cannot be started (removed since)."""
    loaded: list[tuple[int, CollectionDefinition]] = []
    not_started: list[str] = []
    for name in targets:
        try:
            loaded.append(collections.load_collection(ws, name))
        except IdsyncError as exc:
            not_started.append(f"collection {name!r} not started: {exc.message}")
    return loaded, not_started


def _missed_reason(schedule: Any, owned: list[tuple[int, datetime, int]], count: int, *, catch_up: bool) -> str:
    first, last = owned[0][1], owned[-1][1]
    span = f"at {_when(first)}" if count == 1 else f"between {_when(first)} and {_when(last)}"
    if count > len(owned):
        span = f"up to {_when(last)}"
    policy = "running once now" if schedule.misfire == "run_once" and catch_up else "not run"
    return (
        f"missed: {count} scheduled run(s) of schedule {schedule.name!r} {span} "
        f"(no scheduler was running; misfire: {schedule.misfire}, {policy})"
    )


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")
