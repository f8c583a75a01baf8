"""A schedule's occurrence and the runs it starts, written in one transaction.

The occurrence row is inserted first, with "on conflict do nothing" on
(schedule, trigger, due time): the node whose insert goes in owns it. In
the same transaction each target collection's run is created and claimed
for this node, or queued or skipped by the collection's overlap rule
(:func:`~idsync.services.collection_runs.start_in`); occurrences found too
late are recorded with one *missed* run per target. The schedule's cursor
(how far its occurrences have been looked at) moves in the same
transaction. Nothing is committed until all of it is written, so a
scheduler that dies on the way

- before the commit leaves nothing: the next tick sees the occurrence again
  and fires it (within the schedule's grace) or records it missed;
- after the commit leaves the occurrence with its runs, claimed under this
  node's lease: the lease runs out and any scheduler marks them failed
  (node lost), and the occurrence is not fired again.

An occurrence is never recorded without its runs, nor started twice. The
caller hands the running runs to its executor once these functions return.

A scheduler that was down (or fell behind) finds many occurrences at once.
:func:`split_due` keeps them from starting in a burst: only those due at
the latest instant within the grace run as scheduled; all the others are
summed up (:class:`Late`) and :func:`record_missed` records them
compactly, however many they are: two occurrence rows (the first and the
last missed), one *missed* run per target naming how many and when, and,
with misfire ``run_once`` when nothing runs on time, one run of each
target. The first missed occurrence's row is also the claim: a node whose
insert finds it there leaves the span to the node that recorded it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from idsync.domain.collections import CollectionDefinition
from idsync.domain.roles import Role
from idsync.errors import IdsyncError, StateConflictError
from idsync.services import authz, collection_runs, collections, schedules
from idsync.services.collection_runs import Runtime, Started
from idsync.services.schedules import StoredSchedule
from idsync.services.workspace import Workspace
from idsync.store.scheduling_repo import SchedulingRepository

RUN_NOW_TRIGGER = -1
"""The trigger index of occurrences recorded by "run now"."""

Occurrence = tuple[datetime, int]
"""An occurrence of a schedule: its due time and the index of its trigger."""


@dataclass(frozen=True)
class Late:
    """Occurrences of a schedule that do not run as scheduled, summed up: how
    many, and the first and the last of them."""

    count: int
    first: Occurrence
    last: Occurrence


def split_due(due: Iterable[Occurrence], now: datetime, grace: timedelta) -> tuple[Late | None, list[Occurrence]]:
    """Split the occurrences found in one look (ascending) into those that run
    as scheduled (every one due at the latest instant at most *grace* before
    *now*: a schedule's triggers may coincide) and the others, summed up.

    One pass holding nothing but the on-time ones of one instant, so a look
    back over a long downtime takes no memory however many it finds."""
    count = 0
    first: Occurrence | None = None
    last: Occurrence | None = None
    on_time: list[Occurrence] = []
    for occurrence in due:
        if now - occurrence[0] > grace:
            superseded = [occurrence]
        elif on_time and on_time[0][0] != occurrence[0]:
            superseded, on_time = on_time, [occurrence]
        else:
            on_time.append(occurrence)
            continue
        count += len(superseded)
        first = first or superseded[0]
        last = superseded[-1]
    if first is None or last is None:
        return None, on_time
    return Late(count, first, last), on_time


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


@dataclass(frozen=True)
class Firing:
    """An occurrence to fire with :func:`fire_many`: the occurrence, its
    target collections (id and definition, read once for a whole tick), and
    how its runs are started."""

    due: Due
    targets: Sequence[tuple[int, CollectionDefinition]]
    trigger: str
    requested_by: str
    stop_after: timedelta | None = None
    advance_cursor: bool = False
    not_started: Sequence[str] = ()


def fire(
    ws: Workspace,
    runtime: Runtime,
    due: Due,
    targets: Sequence[str],
    *,
    trigger: str,
    requested_by: str | None = None,
    stop_after: timedelta | None = None,
    advance_cursor: bool = False,
) -> Fired | None:
    """Record occurrence *due* and start a run of each collection in *targets*,
    in one transaction; None when the occurrence was recorded already
    (another node, or an earlier tick, owns it). With *advance_cursor* (a
    scheduled occurrence), the schedule's cursor moves to it in the same
    transaction, so no later look takes it for one not run yet."""
    loaded, not_started = _load(ws, targets)
    firing = Firing(
        due, loaded, trigger, requested_by if requested_by is not None else ws.actor, stop_after, advance_cursor,
        not_started,
    )
    return fire_many(ws, runtime, [firing])[0]


def fire_many(ws: Workspace, runtime: Runtime, firings: Sequence[Firing]) -> list[Fired | None]:
    """:func:`fire` for several occurrences in one transaction: each is
    recorded (and owned) or found recorded already (None in its place), the
    runs of those owned are started together
    (:func:`~idsync.services.collection_runs.start_many`), and all of it
    commits at once, or nothing does.

    The occurrences are inserted in the order of their key (schedule,
    trigger, due time) whatever the order of *firings*: two schedulers
    firing overlapping sets then wait for each other's rows in the same
    order, never in a cycle."""
    order = sorted(range(len(firings)), key=lambda i: (
        firings[i].due.schedule_id, firings[i].due.trigger_index, firings[i].due.due_at,
    ))
    owned: dict[int, int] = {}
    wanted: list[collection_runs.StartRequest] = []
    with ws.db.session() as session:
        repo = SchedulingRepository(session, clock=runtime.clock)
        for state in sorted({firing.due.state for firing in firings}):
            keys = {
                i: (firings[i].due.schedule_id, firings[i].due.schedule_name, firings[i].due.trigger_index,
                    firings[i].due.due_at)
                for i in order if firings[i].due.state == state
            }
            inserted = repo.insert_occurrences(list(keys.values()), state=state, node=runtime.node)
            owned |= {i: inserted[key] for i, key in keys.items() if key in inserted}
        cursors: dict[int, datetime] = {}
        for i in order:
            due = firings[i].due
            if i in owned and firings[i].advance_cursor:
                cursors[due.schedule_id] = max(due.due_at, cursors.get(due.schedule_id, due.due_at))
        repo.advance_cursors(cursors)
        for i in order:
            if i not in owned:
                continue
            firing = firings[i]
            wanted.extend(
                collection_runs.StartRequest(
                    collection_id, collection, firing.trigger, firing.requested_by, owned[i], firing.stop_after,
                )
                for collection_id, collection in firing.targets
            )
        started = iter(collection_runs.start_many(session, runtime, wanted))
    by_firing = {i: [next(started) for _ in firings[i].targets] for i in order if i in owned}
    return [
        Fired(owned[i], by_firing[i], list(firings[i].not_started)) if i in owned else None
        for i in range(len(firings))
    ]


def run_now(ws: Workspace, runtime: Runtime, schedule_id: int, schedule_name: str, targets: Sequence[str]) -> Fired:
    """Start every collection in *targets* now for schedule *schedule_name*,
    recorded as an occurrence of trigger :data:`RUN_NOW_TRIGGER` due now (so
    the schedule shows it as its last run), in one transaction."""
    authz.require(ws, Role.OPERATOR, "run collections")
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
    late: Late,
    targets: Sequence[str],
    *,
    catch_up: bool,
    covered_by: datetime | None = None,
) -> Missed | None:
    """Record the *late* occurrences of *stored* in one transaction: a row
    for the first and the last, one *missed* run per target summing them up,
    the schedule's cursor moved to the last, and, with misfire ``run_once``
    and *catch_up* (nothing runs on time in the same look), a run of each
    target now. *covered_by* is the due time of the occurrence that runs on
    time instead, if any. None when another node recorded them (its row of
    the first one is there): the caller leaves the span to it."""
    schedule = stored.definition
    loaded, not_started = _load(ws, targets)
    with ws.db.session() as session:
        repo = SchedulingRepository(session, clock=runtime.clock)

        def insert(occurrence: Occurrence) -> int | None:
            return repo.insert_occurrence(
                schedule_id=stored.id, schedule_name=schedule.name, trigger_index=occurrence[1],
                due_at=occurrence[0], state="missed", node=runtime.node,
            )

        first = insert(late.first)
        if first is None:
            return None
        latest = (insert(late.last) if late.last != late.first else None) or first
        repo.advance_cursor(stored.id, late.last[0])
        caught_up = schedule.misfire == "run_once" and catch_up
        reason = _missed_reason(schedule, late, caught_up=caught_up, covered_by=covered_by)
        for collection_id, collection in loaded:
            collection_runs.record_missed(session, ws, collection_id, collection.name, latest, reason, runtime)
        started: list[Started] = []
        if caught_up:
            stop_after = schedules.as_timedelta(getattr(schedule.triggers[late.last[1]], "stop_after", None))
            started = [
                collection_runs.start_in(
                    session, collection_id, collection, runtime, trigger="misfire",
                    requested_by=f"schedule {schedule.name}", occurrence_id=latest, stop_after=stop_after,
                )
                for collection_id, collection in loaded
            ]
    return Missed(late.count, reason, caught_up, started, not_started)


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


def _missed_reason(schedule: Any, late: Late, *, caught_up: bool, covered_by: datetime | None) -> str:
    first, last = late.first[0], late.last[0]
    span = f"at {_when(first)}" if late.count == 1 else f"between {_when(first)} and {_when(last)}"
    if caught_up:
        policy = "running once now"
    elif covered_by is not None:
        policy = f"the run due at {_when(covered_by)} covers them"
    else:
        policy = "not run"
    return (
        f"missed: {late.count} scheduled run(s) of schedule {schedule.name!r} {span} "
        f"(no scheduler was running; misfire: {schedule.misfire}, {policy})"
    )


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")
