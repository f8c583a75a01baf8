"""What the scheduler keeps in the database: occurrences, cursors, claims and leases.

Every decision that two nodes could both make is made by the database:

- an occurrence is a row unique on (schedule, trigger, due time), inserted
  with "on conflict do nothing": the node whose insert went in owns it;
- a run is claimed by an ``UPDATE ... WHERE state = <expected>``: one node's
  update matches, the others' match nothing; the partial unique indexes on
  ``runs`` refuse a second running (or queued) run of one collection;
- a claimed run holds a lease (``lease_until``) its node renews, and a fence
  counter incremented at every claim or takeover; writes of the result name
  the fence they hold, so a node that lost its run cannot overwrite it.

The functions taking a :class:`Database` run in a transaction of their own,
because a refused claim (a unique index violation) ends the transaction.
:meth:`SchedulingRepository.claim_run` and :meth:`~SchedulingRepository.enqueue_run`
make the same decisions inside the caller's transaction, each under a
savepoint, so a refusal undoes only itself: what the caller wrote before
(an occurrence, the run's row) commits with the outcome.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Update, and_, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idsync.domain.results import Counts, RunState
from idsync.store.db import Database
from idsync.store.tables import run_logs, runs, schedule_cursors, schedule_occurrences, utcnow

NODE_LOST = "node lost (lease expired); its counts are a lower bound: writes after its last recorded batch are not counted"
"""The reason recorded on a run whose node stopped renewing its lease.

Counts are recorded once per batch, after the batch's writes; a process
killed between two batches has written changes its counts do not show yet
(at most about one batch of them). Its plan lists what was planned."""


@dataclass(frozen=True)
class Occurrence:
    """One due time of a schedule, as recorded."""

    id: int
    schedule_id: int
    schedule_name: str
    trigger_index: int
    due_at: datetime
    state: str
    node: str
    recorded_at: datetime


class SchedulingRepository:
    """Occurrences, cursors and leases; the caller's session decides when it is committed."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock

    # ------------------------------------------------------------ occurrences

    def insert_occurrence(
        self,
        *,
        schedule_id: int,
        schedule_name: str,
        trigger_index: int,
        due_at: datetime,
        state: str,
        node: str,
    ) -> int | None:
        """Record an occurrence; its id when this call inserted it, None when it
        was there already (another node, or an earlier tick, owns it)."""
        values = {
            "schedule_id": schedule_id,
            "schedule_name": schedule_name,
            "trigger_index": trigger_index,
            "due_at": due_at,
            "state": state,
            "node": node,
            "recorded_at": self._clock(),
        }
        keys = ["schedule_id", "trigger_index", "due_at"]
        dialect = self._session.get_bind().dialect.name
        statement: Any
        if dialect == "postgresql":
            statement = postgresql.insert(schedule_occurrences).values(values).on_conflict_do_nothing(index_elements=keys)
        else:
            statement = sqlite.insert(schedule_occurrences).values(values).on_conflict_do_nothing(index_elements=keys)
        result = self._session.execute(statement.returning(schedule_occurrences.c.id))
        inserted = result.scalar_one_or_none()
        return int(inserted) if inserted is not None else None

    def occurrences(self, schedule_name: str, *, limit: int = 20) -> builtins.list[Occurrence]:
        """The newest recorded occurrences of a schedule first."""
        query = (
            select(schedule_occurrences)
            .where(schedule_occurrences.c.schedule_name == schedule_name)
            .order_by(schedule_occurrences.c.due_at.desc(), schedule_occurrences.c.id.desc())
            .limit(limit)
        )
        return [_occurrence(row) for row in self._session.execute(query)]

    def last_started(self, schedule_name: str) -> tuple[datetime, str] | None:
        """When the schedule last started a run, and that run's state."""
        query = (
            select(runs.c.started_at, runs.c.created_at, runs.c.state)
            .select_from(runs.join(schedule_occurrences, runs.c.occurrence_id == schedule_occurrences.c.id))
            .where(
                schedule_occurrences.c.schedule_name == schedule_name,
                runs.c.kind == "collection",
                runs.c.state.not_in([RunState.MISSED.value]),
            )
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .limit(1)
        )
        row = self._session.execute(query).first()
        if row is None:
            return None
        return (row.started_at or row.created_at, row.state)

    # ------------------------------------------------------------ cursors

    def cursor(self, schedule_id: int) -> datetime | None:
        """Up to when the schedule's occurrences have been looked at; None if never."""
        query = select(schedule_cursors.c.checked_until).where(schedule_cursors.c.schedule_id == schedule_id)
        value = self._session.execute(query).scalar_one_or_none()
        return value if isinstance(value, datetime) else None

    def cursors(self) -> dict[int, datetime]:
        """Every schedule's cursor (:meth:`cursor`), in one query."""
        rows = self._session.execute(select(schedule_cursors.c.schedule_id, schedule_cursors.c.checked_until))
        return {int(row.schedule_id): row.checked_until for row in rows if isinstance(row.checked_until, datetime)}

    def insert_occurrences(self, wanted: Sequence[OccurrenceKey], *, state: str, node: str) -> dict[OccurrenceKey, int]:
        """:meth:`insert_occurrence` for several (schedule id, schedule name,
        trigger index, due time) in one statement, inserted in the order
        given: the ids of those this call inserted, by key; those recorded
        already (another node owns them) are left out."""
        if not wanted:
            return {}
        now = self._clock()
        values = [
            {"schedule_id": schedule_id, "schedule_name": name, "trigger_index": index, "due_at": due_at,
             "state": state, "node": node, "recorded_at": now}
            for schedule_id, name, index, due_at in wanted
        ]
        dialect = self._session.get_bind().dialect.name
        statement: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(schedule_occurrences)
        statement = statement.values(values).on_conflict_do_nothing(
            index_elements=["schedule_id", "trigger_index", "due_at"]
        ).returning(
            schedule_occurrences.c.id, schedule_occurrences.c.schedule_id, schedule_occurrences.c.trigger_index,
            schedule_occurrences.c.due_at,
        )
        inserted = {
            (row.schedule_id, row.trigger_index, _utc(row.due_at)): int(row.id)
            for row in self._session.execute(statement)
        }
        found: dict[OccurrenceKey, int] = {}
        for key in wanted:
            occurrence = inserted.get((key[0], key[2], _utc(key[3])))
            if occurrence is not None:
                found[key] = occurrence
        return found

    def advance_cursors(self, to: dict[int, datetime]) -> None:
        """:meth:`advance_cursor` for several schedules (schedule id to instant) in one statement."""
        if not to:
            return
        dialect = self._session.get_bind().dialect.name
        statement: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(schedule_cursors)
        statement = statement.values(
            [{"schedule_id": schedule_id, "checked_until": at} for schedule_id, at in sorted(to.items())]
        ).on_conflict_do_update(
            index_elements=["schedule_id"],
            set_={"checked_until": statement.excluded.checked_until},
            where=schedule_cursors.c.checked_until < statement.excluded.checked_until,
        )
        self._session.execute(statement)

    def advance_cursor(self, schedule_id: int, to: datetime) -> None:
        """Move the cursor forward to *to* (never backwards, whoever got there
        first), in one statement: a scheduler moves one per occurrence it fires."""
        dialect = self._session.get_bind().dialect.name
        statement: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(schedule_cursors)
        statement = statement.values(schedule_id=schedule_id, checked_until=to).on_conflict_do_update(
            index_elements=["schedule_id"],
            set_={"checked_until": statement.excluded.checked_until},
            where=schedule_cursors.c.checked_until < statement.excluded.checked_until,
        )
        self._session.execute(statement)

    def reset_cursor(self, schedule_id: int, to: datetime) -> None:
        """Set the cursor to *to*: occurrences before it are never fired nor missed
        (a schedule that was disabled, then enabled again)."""
        self.advance_cursor(schedule_id, to)
        self._session.execute(
            update(schedule_cursors).where(schedule_cursors.c.schedule_id == schedule_id).values(checked_until=to)
        )

    # ------------------------------------------------------------ claims in the caller's transaction

    def claim_run(self, run_id: int, *, expected: RunState, node: str, lease: timedelta) -> int | None:
        """Start run *run_id* on *node* if it is still in state *expected*, in
        this transaction: its new fence, or None when it is not in that state
        or the collection has a running run already (the database refuses a
        second one; a savepoint keeps that refusal from ending the transaction)."""
        try:
            with self._session.begin_nested():
                fence = self._session.execute(
                    _claim(runs.c.id == run_id, expected, node, lease, self._clock()).returning(runs.c.fence)
                ).scalar_one_or_none()
        except IntegrityError:
            return None
        return int(fence) if fence is not None else None

    def claim_runs(self, run_ids: Sequence[int], *, node: str, lease: timedelta) -> dict[int, int] | None:
        """:meth:`claim_run` for several pending runs in one statement: the
        fence of each claimed (those no longer pending are left out), or None
        when the database refused one of them (its collection has a running
        run): then none is claimed, and the caller claims them one by one."""
        if not run_ids:
            return {}
        try:
            with self._session.begin_nested():
                claimed = self._session.execute(
                    _claim(runs.c.id.in_(run_ids), RunState.PENDING, node, lease, self._clock())
                    .returning(runs.c.id, runs.c.fence)
                ).all()
        except IntegrityError:
            return None
        return {int(row.id): int(row.fence) for row in claimed}

    def enqueue_run(self, run_id: int) -> bool:
        """Put pending run *run_id* in its collection's queue, in this
        transaction; False when a run waits there already."""
        try:
            with self._session.begin_nested():
                result = self._session.execute(_enqueue(run_id))
        except IntegrityError:
            return False
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------ leases

    def renew(self, run_id: int, fence: int, lease: timedelta) -> bool:
        """Extend the lease of a run this node holds; False when it holds it no more."""
        now = self._clock()
        result = self._session.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.fence == fence, runs.c.state == RunState.RUNNING.value)
            .values(lease_until=now + lease, heartbeat_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def take_over(self, run_id: int, fence: int, node: str, lease: timedelta) -> int | None:
        """Move running run *run_id*, held at *fence* by the node that deferred
        it, to *node* (a worker) with a fresh lease: its new fence, or None
        when the run is no longer held at *fence* (it ended, or was lost)."""
        now = self._clock()
        result = self._session.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.fence == fence, runs.c.state == RunState.RUNNING.value)
            .values(node=node, started_at=now, lease_until=now + lease, heartbeat_at=now, fence=runs.c.fence + 1)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        return fence + 1

    def finish_fenced(
        self, run_id: int, fence: int, state: RunState, counts: Counts, error: str | None
    ) -> bool:
        """Write the result of a run this node holds; False (nothing written) when
        the run was taken over since (its fence moved on)."""
        result = self._session.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.fence == fence, runs.c.state == RunState.RUNNING.value)
            .values(
                state=state.value,
                counts=counts.to_dict(),
                error=error,
                finished_at=self._clock(),
                lease_until=None,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def expire_leases(self) -> builtins.list[int]:
        """Mark failed every running run whose lease ran out (its node is gone),
        with the job runs it left running; the ids of the collection runs."""
        now = self._clock()
        lost = [
            int(row.id)
            for row in self._session.execute(
                select(runs.c.id).where(
                    runs.c.state == RunState.RUNNING.value,
                    runs.c.lease_until.is_not(None),
                    runs.c.lease_until < now,
                )
            )
        ]
        if lost:
            self._end(lost, RunState.FAILED, NODE_LOST, expected=(RunState.RUNNING,), lease_expired=True)
        return lost

    def release_node(self, node: str, state: RunState, reason: str) -> builtins.list[int]:
        """End every run still marked running on *node* (a scheduler shutting down)."""
        held = [
            int(row.id)
            for row in self._session.execute(
                select(runs.c.id).where(runs.c.state == RunState.RUNNING.value, runs.c.node == node)
            )
        ]
        if held:
            self._end(held, state, reason, expected=(RunState.RUNNING,))
        return held

    def _end(
        self,
        run_ids: builtins.list[int],
        state: RunState,
        reason: str,
        *,
        expected: tuple[RunState, ...],
        lease_expired: bool = False,
    ) -> None:
        now = self._clock()
        condition: ColumnElement[bool] = runs.c.id.in_(run_ids)
        if lease_expired:
            condition = and_(condition, runs.c.lease_until < now)
        self._session.execute(
            update(runs)
            .where(condition, runs.c.state.in_([s.value for s in expected]))
            .values(state=state.value, error=reason, finished_at=now, lease_until=None, fence=runs.c.fence + 1)
        )
        children = [
            int(row.id)
            for row in self._session.execute(
                select(runs.c.id).where(
                    runs.c.parent_run_id.in_(run_ids),
                    runs.c.state.in_([RunState.RUNNING.value, RunState.PENDING.value]),
                )
            )
        ]
        if children:
            self._session.execute(
                update(runs)
                .where(runs.c.id.in_(children))
                .values(state=state.value, error=reason, finished_at=now, fence=runs.c.fence + 1)
            )
        self._session.execute(
            insert(run_logs),
            [{"run_id": run_id, "at": now, "level": "error", "message": reason} for run_id in run_ids + children],
        )

    def queued_runs(self) -> builtins.list[tuple[int, str]]:
        """Queued collection runs (id, collection), oldest first."""
        query = (
            select(runs.c.id, runs.c.collection_name)
            .where(runs.c.kind == "collection", runs.c.state == RunState.QUEUED.value)
            .order_by(runs.c.id)
        )
        return [(int(row.id), str(row.collection_name)) for row in self._session.execute(query)]

    def holder(self, collection_name: str, state: RunState = RunState.RUNNING) -> int | None:
        """The id of the collection's run in *state* (running or queued), if any."""
        query = select(func.min(runs.c.id)).where(
            runs.c.kind == "collection",
            runs.c.collection_name == collection_name,
            runs.c.state == state.value,
        )
        value = self._session.execute(query).scalar_one_or_none()
        return int(value) if value is not None else None


# ---------------------------------------------------------------- one transaction each


def claim(
    db: Database,
    run_id: int,
    *,
    expected: RunState,
    node: str,
    lease: timedelta,
    clock: Callable[[], datetime] = utcnow,
) -> int | None:
    """Start run *run_id* on *node* if it is still in state *expected*: its new
    fence, or None when another node claimed it first or the collection has a
    running run already (the database refuses a second one)."""
    try:
        with db.session() as session:
            result = session.execute(_claim(runs.c.id == run_id, expected, node, lease, clock()))
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            fence = session.execute(select(runs.c.fence).where(runs.c.id == run_id)).scalar_one()
    except IntegrityError:
        return None
    return int(fence)


def enqueue(db: Database, run_id: int) -> bool:
    """Put pending run *run_id* in its collection's queue; False when a run waits there already."""
    try:
        with db.session() as session:
            result = session.execute(_enqueue(run_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]
    except IntegrityError:
        return False


OccurrenceKey = tuple[int, str, int, datetime]
"""An occurrence to record: schedule id, schedule name, trigger index, due time."""


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _claim(which: ColumnElement[bool], expected: RunState, node: str, lease: timedelta, now: datetime) -> Update:
    return (
        update(runs)
        .where(which, runs.c.state == expected.value)
        .values(
            state=RunState.RUNNING.value,
            started_at=now,
            node=node,
            lease_until=now + lease,
            heartbeat_at=now,
            fence=runs.c.fence + 1,
        )
    )


def _enqueue(run_id: int) -> Update:
    return (
        update(runs)
        .where(runs.c.id == run_id, runs.c.state == RunState.PENDING.value)
        .values(state=RunState.QUEUED.value)
    )


def _occurrence(row: Row[Any]) -> Occurrence:
    return Occurrence(
        id=row.id,
        schedule_id=row.schedule_id,
        schedule_name=row.schedule_name,
        trigger_index=row.trigger_index,
        due_at=row.due_at,
        state=row.state,
        node=row.node,
        recorded_at=row.recorded_at,
    )
