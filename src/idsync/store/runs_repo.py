"""Runs: their state, counts, record errors and log.

A run is a row created when it is requested (``pending``), started,
updated with progress counts while it works, and finished with its final
state. Record errors are written in batches (one ``executemany``) since a
bad source can produce thousands of them. Run rows keep the job's name, so
the history outlives the job (its ``job_id`` becomes NULL on deletion).

A job has at most one running run: the database refuses a second one (a
partial unique index on ``job_id``), and :meth:`RunRepository.start`
reports that refusal as a StateConflictError.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idsync.domain.results import Counts, ErrorItem, RunState
from idsync.errors import NotFoundError, StateConflictError
from idsync.store.keyset import Position, older_than
from idsync.store.serialize import error_rows
from idsync.store.tables import run_errors, run_logs, runs, utcnow


@dataclass(frozen=True)
class RunRow:
    """A run as stored."""

    id: int
    kind: str
    job_id: int | None
    job_name: str
    plan_id: int | None
    state: RunState
    trigger: str
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: Counts
    error: str | None
    collection_id: int | None = None
    collection_name: str | None = None
    parent_run_id: int | None = None
    occurrence_id: int | None = None
    node: str | None = None
    lease_until: datetime | None = None
    fence: int = 0
    stop_requested: str | None = None
    stop_after: int | None = None

    @property
    def duration_seconds(self) -> float | None:
        """From start to finish; None until both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class LogLine:
    """One line of a run's log."""

    at: datetime
    level: str
    message: str


SUCCESSFUL_STATES = (RunState.SUCCEEDED,)
"""What :meth:`RunRepository.last_successful` counts as a success by default."""


class RunRepository:
    """Reads and writes runs; the caller's session decides when it is committed."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock

    def create(
        self,
        *,
        job_name: str,
        job_id: int | None,
        plan_id: int | None = None,
        kind: str = "job",
        trigger: str = "manual",
        requested_by: str = "",
        collection_id: int | None = None,
        collection_name: str | None = None,
        parent_run_id: int | None = None,
        occurrence_id: int | None = None,
        stop_after: int | None = None,
    ) -> int:
        """A new pending run; its id. A job run of a collection run names its
        *parent_run_id*; a scheduled run its *occurrence_id*; *stop_after*
        (seconds) stops it once it has run that long."""
        result = self._session.execute(
            insert(runs).values(
                kind=kind,
                job_id=job_id,
                job_name=job_name,
                plan_id=plan_id,
                state=RunState.PENDING.value,
                trigger=trigger,
                requested_by=requested_by,
                created_at=self._clock(),
                counts=Counts().to_dict(),
                collection_id=collection_id,
                collection_name=collection_name,
                parent_run_id=parent_run_id,
                occurrence_id=occurrence_id,
                stop_after=stop_after,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[attr-defined]

    def start(self, run_id: int, *, node: str | None = None, lease: timedelta | None = None) -> int:
        """Mark pending run *run_id* running; its fence. With a *lease*, *node*
        holds the run until the lease runs out (a heartbeat renews it).

        Raises StateConflictError when its job has a running run already
        (the database refuses a second one); the caller's transaction is then
        unusable and must be rolled back.
        """
        now = self._clock()
        values: dict[str, Any] = {"state": RunState.RUNNING.value, "started_at": now, "fence": runs.c.fence + 1}
        if lease is not None:
            values.update(node=node, lease_until=now + lease, heartbeat_at=now)
        try:
            result = self._session.execute(
                update(runs).where(runs.c.id == run_id, runs.c.state == RunState.PENDING.value).values(**values)
            )
        except IntegrityError as exc:
            raise StateConflictError(
                f"run {run_id} cannot start: its job has a running run already",
                field="job",
                hint="wait for the running run to finish",
            ) from exc
        if not result.rowcount:  # type: ignore[attr-defined]
            self.require(run_id)
            raise StateConflictError(f"run {run_id} cannot start: it is no longer pending")
        return int(self._session.execute(select(runs.c.fence).where(runs.c.id == run_id)).scalar_one())

    def running_job_run(self, job_id: int) -> int | None:
        """The id of the running run of job *job_id*, if any."""
        query = select(runs.c.id).where(
            runs.c.kind == "job", runs.c.job_id == job_id, runs.c.state == RunState.RUNNING.value
        )
        value = self._session.execute(query).scalar_one_or_none()
        return int(value) if value is not None else None

    def finish(
        self, run_id: int, state: RunState, counts: Counts, error: str | None = None
    ) -> None:
        """Record the final state, counts and (for a failed run) the fatal error."""
        if not state.finished:
            raise ValueError(f"run {run_id} cannot finish in state {state.value!r}")
        self._update(
            run_id,
            state=state.value,
            counts=counts.to_dict(),
            error=error,
            finished_at=self._clock(),
        )

    def update_counts(self, run_id: int, counts: Counts) -> None:
        """Progress of a running run, so viewers see it move."""
        self._update(run_id, counts=counts.to_dict())

    def add_errors(self, run_id: int, items: Sequence[ErrorItem]) -> None:
        if not items:
            return
        self._session.execute(
            insert(run_errors),
            error_rows(items, run_id=run_id),
        )

    def log(self, run_id: int, level: str, message: str) -> None:
        self._session.execute(
            insert(run_logs).values(run_id=run_id, at=self._clock(), level=level, message=message)
        )

    def log_many(self, lines: Sequence[tuple[int, str, str]]) -> None:
        """:meth:`log` for several (run id, level, message) in one statement."""
        if lines:
            at = self._clock()
            self._session.execute(insert(run_logs), [
                {"run_id": run_id, "at": at, "level": level, "message": message} for run_id, level, message in lines
            ])

    def get(self, run_id: int) -> RunRow | None:
        row = self._session.execute(select(runs).where(runs.c.id == run_id)).first()
        return _run(row) if row is not None else None

    def require(self, run_id: int) -> RunRow:
        found = self.get(run_id)
        if found is None:
            raise _no_run(run_id)
        return found

    def list(
        self,
        *,
        limit: int = 50,
        job_name: str | None = None,
        state: RunState | None = None,
        collection_name: str | None = None,
        kind: str | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        after: Position | None = None,
    ) -> builtins.list[RunRow]:
        """The newest runs first; *created_from* and *created_before* bound
        when they were created (from included, before excluded); with
        *after*, those after that position (keyset pagination)."""
        query = select(runs)
        if created_from is not None:
            query = query.where(runs.c.created_at >= created_from)
        if created_before is not None:
            query = query.where(runs.c.created_at < created_before)
        if after is not None:
            query = query.where(older_than(runs.c.created_at, runs.c.id, after))
        if job_name is not None:
            query = query.where(runs.c.job_name == job_name)
        if collection_name is not None:
            query = query.where(runs.c.collection_name == collection_name)
        if kind is not None:
            query = query.where(runs.c.kind == kind)
        if state is not None:
            query = query.where(runs.c.state == state.value)
        query = query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        return [_run(row) for row in self._session.execute(query)]

    def state_counts(self, *, since: datetime, kind: str | None = None) -> dict[str, int]:
        """How many runs (of *kind*) were created since *since*, per state."""
        query = select(runs.c.state, func.count()).where(runs.c.created_at >= since)
        if kind is not None:
            query = query.where(runs.c.kind == kind)
        return {state: int(number) for state, number in self._session.execute(query.group_by(runs.c.state))}

    def children(self, run_id: int) -> builtins.list[RunRow]:
        """The job runs of collection run *run_id*, in the order they were recorded."""
        query = select(runs).where(runs.c.parent_run_id == run_id).order_by(runs.c.id)
        return [_run(row) for row in self._session.execute(query)]

    def held_for_plan(self, plan_id: int) -> RunRow | None:
        """The held job run of a collection run that waits for plan *plan_id*, if any."""
        query = (
            select(runs)
            .where(
                runs.c.plan_id == plan_id,
                runs.c.state == RunState.HELD.value,
                runs.c.parent_run_id.is_not(None),
            )
            .order_by(runs.c.id)
            .limit(1)
        )
        row = self._session.execute(query).first()
        return _run(row) if row is not None else None

    def set_plan(self, run_id: int, plan_id: int) -> None:
        """Attach plan *plan_id* to run *run_id* (the changes a held run did not write)."""
        self._update(run_id, plan_id=plan_id)

    def settle(self, run_id: int, state: RunState, counts: Counts, error: str | None) -> None:
        """Change a finished run's outcome (a held job released later), keeping when it finished."""
        self._update(run_id, state=state.value, counts=counts.to_dict(), error=error)

    def request_stop(self, run_id: int, reason: str) -> None:
        """Ask a running run to stop at its next batch (the first request's reason is kept)."""
        self._session.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.stop_requested.is_(None))
            .values(stop_requested=reason)
        )

    def stop_requested(self, run_id: int) -> str | None:
        """Why run *run_id* was asked to stop, or None."""
        query = select(runs.c.stop_requested).where(runs.c.id == run_id)
        value = self._session.execute(query).scalar_one_or_none()
        return str(value) if value else None

    def errors(self, run_id: int, limit: int | None = None) -> builtins.list[ErrorItem]:
        """The record errors of a run, in the order they happened."""
        query = select(run_errors).where(run_errors.c.run_id == run_id).order_by(run_errors.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [
            ErrorItem(
                message=row.message, key=row.key, attribute=row.attribute, line=row.line, dn=row.dn
            )
            for row in self._session.execute(query)
        ]

    def error_count(self, run_id: int) -> int:
        query = select(func.count()).select_from(run_errors).where(run_errors.c.run_id == run_id)
        return int(self._session.execute(query).scalar_one())

    def logs(self, run_id: int) -> builtins.list[LogLine]:
        query = select(run_logs).where(run_logs.c.run_id == run_id).order_by(run_logs.c.id)
        return [
            LogLine(at=row.at, level=row.level, message=row.message)
            for row in self._session.execute(query)
        ]

    def last_successful(
        self, job_name: str, *, states: Sequence[RunState] = SUCCESSFUL_STATES
    ) -> RunRow | None:
        """The latest run of *job_name* that ended in one of *states* (default: succeeded)."""
        query = (
            select(runs)
            .where(runs.c.job_name == job_name, runs.c.state.in_([s.value for s in states]))
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .limit(1)
        )
        row = self._session.execute(query).first()
        return _run(row) if row is not None else None

    def delete(self, run_id: int) -> bool:
        """Forget a run with its errors and log (retention); False if it did not exist."""
        result = self._session.execute(delete(runs).where(runs.c.id == run_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _update(self, run_id: int, **values: Any) -> None:
        result = self._session.execute(update(runs).where(runs.c.id == run_id).values(**values))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise _no_run(run_id)


def _no_run(run_id: int) -> NotFoundError:
    return NotFoundError(f"no run {run_id}", hint="list the runs to see which exist")


def _run(row: Row[Any]) -> RunRow:
    return RunRow(
        id=row.id,
        kind=row.kind,
        job_id=row.job_id,
        job_name=row.job_name,
        plan_id=row.plan_id,
        state=RunState(row.state),
        trigger=row.trigger,
        requested_by=row.requested_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=Counts.from_dict(row.counts),
        error=row.error,
        collection_id=row.collection_id,
        collection_name=row.collection_name,
        parent_run_id=row.parent_run_id,
        occurrence_id=row.occurrence_id,
        node=row.node,
        lease_until=row.lease_until,
        fence=row.fence,
        stop_requested=row.stop_requested,
        stop_after=row.stop_after,
    )
