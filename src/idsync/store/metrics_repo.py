"""The aggregate reads behind a node's metrics.

Each read is one grouped query over an indexed column, so a scrape stays
cheap however many runs, messages and requests the database holds: runs by
state (``ix_runs_state``), open runs (the same), settled runs by id (the
primary key), outbox messages by state (``ix_outbox_state_next_attempt_at``),
pending requests (``ix_requests_state``), occurrences due lately
(``ix_schedule_occurrences_due_at``) joined to their runs
(``ix_runs_occurrence_id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, inspect, or_, select, text
from sqlalchemy.orm import Session

from idsync.domain.results import Counts, RunState
from idsync.store.tables import outbox, plans, requests, runs, schedule_occurrences

OPEN_STATES = tuple(state.value for state in RunState if not state.finished)
"""The states a run may still leave; a run in any other keeps its counts for ever."""

WORKER_JOBS_TABLE = "procrastinate_jobs"

_RUNS_AND_PLANS = runs.outerjoin(plans, plans.c.id == runs.c.plan_id)

OWN_CHANGES = and_(
    runs.c.kind != "collection",
    runs.c.state != RunState.HELD.value,
    or_(plans.c.applied_run_id.is_(None), plans.c.applied_run_id == runs.c.id),
)
"""Whether a finished run's counts are changes it made itself, so that each
change is counted once: not a collection run's (they add up its job runs'),
nor a held job run's, whether still held (it wrote nothing) or released
(it then carries the counts of the run that applied its plan)."""


@dataclass(frozen=True, slots=True)
class FinishedRun:
    """What the metrics take from one finished run."""

    id: int
    kind: str
    counts: Counts
    started_at: datetime | None
    finished_at: datetime | None
    own_changes: bool
    """Its counts are changes it made itself (see :data:`OWN_CHANGES`)."""


class MetricsRepository:
    """Grouped counts over the tables a node's metrics describe."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def runs_by_state(self) -> dict[tuple[str, str], int]:
        """How many runs there are of each (kind, state)."""
        rows = self._session.execute(select(runs.c.kind, runs.c.state, func.count()).group_by(runs.c.kind, runs.c.state))
        return {(kind, state): int(n) for kind, state, n in rows}

    def first_open_run(self) -> int | None:
        """The smallest id of a run still open (pending, queued, running, awaiting approval)."""
        found = self._session.execute(select(func.min(runs.c.id)).where(runs.c.state.in_(OPEN_STATES))).scalar()
        return None if found is None else int(found)

    def last_run_created_before(self, instant: datetime) -> int:
        """The largest id of a run created before *instant* (0: none)."""
        found = self._session.execute(select(func.max(runs.c.id)).where(runs.c.created_at < instant)).scalar()
        return int(found or 0)

    def finished_runs(self, after_id: int) -> list[FinishedRun]:
        """The finished runs with an id above *after_id* (the few not settled yet)."""
        query = (
            select(runs.c.id, runs.c.kind, runs.c.counts, runs.c.started_at, runs.c.finished_at, OWN_CHANGES)
            .select_from(_RUNS_AND_PLANS)
            .where(runs.c.id > after_id, runs.c.state.not_in(OPEN_STATES))
        )
        return [_finished(row) for row in self._session.execute(query.order_by(runs.c.id))]

    def sums(self, after_id: int, through_id: int, operations: Sequence[str]) -> tuple[dict[str, int], int]:
        """Objects changed by each of *operations*, and record errors, summed in
        the database over the finished runs with ids in (*after_id*, *through_id*]
        that made them (:data:`OWN_CHANGES`)."""
        columns = [func.coalesce(func.sum(runs.c.counts[op].as_integer()), 0) for op in (*operations, "errors")]
        row = self._session.execute(
            select(*columns).select_from(_RUNS_AND_PLANS).where(*self._finished_between(after_id, through_id), OWN_CHANGES)
        ).one()
        values = [int(v) for v in row]
        return dict(zip(operations, values[:-1], strict=True)), values[-1]

    def duration_buckets(
        self, after_id: int, through_id: int, bounds: Sequence[float]
    ) -> dict[str, tuple[list[int], float]]:
        """By kind of run, how many finished runs with ids in (*after_id*,
        *through_id*] lasted at most each of *bounds* seconds (and more than the
        one before; a last bucket holds the rest), and their total seconds."""
        seconds = self._seconds()
        bucket = case(*((seconds <= bound, index) for index, bound in enumerate(bounds)), else_=len(bounds))
        rows = self._session.execute(
            select(runs.c.kind, bucket, func.count(), func.coalesce(func.sum(seconds), 0.0))
            .where(*self._finished_between(after_id, through_id), runs.c.started_at.is_not(None),
                   runs.c.finished_at.is_not(None))
            .group_by(runs.c.kind, bucket)
        )
        found: dict[str, tuple[list[int], float]] = {}
        for kind, index, n, total in rows:
            counts, sum_ = found.get(kind, ([0] * (len(bounds) + 1), 0.0))
            counts[int(index)] += int(n)
            found[kind] = (counts, sum_ + float(total))
        return found

    def _finished_between(self, after_id: int, through_id: int) -> list[Any]:
        return [runs.c.id > after_id, runs.c.id <= through_id, runs.c.state.not_in(OPEN_STATES)]

    def _seconds(self) -> Any:
        """A finished run's duration in seconds (none below 0), as SQL of this database."""
        if self._session.connection().dialect.name == "postgresql":
            raw: Any = func.extract("epoch", runs.c.finished_at - runs.c.started_at)
        else:
            # A Julian day number as a double is exact to about 50 µs only: rounded to
            # the millisecond, a run of exactly 1 s is 1 s, never 1.00004 s.
            raw = func.round((func.julianday(runs.c.finished_at) - func.julianday(runs.c.started_at)) * 86400.0, 3)
        return case((raw < 0, 0.0), else_=raw)

    def outbox_by_state(self) -> dict[str, int]:
        """How many outbox messages are pending, sending, sent and failed."""
        rows = self._session.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
        return {state: int(n) for state, n in rows}

    def pending_requests(self) -> int:
        return int(self._session.execute(select(func.count()).where(requests.c.state == "pending")).scalar() or 0)

    def scheduler_lags(self, since: datetime) -> list[float]:
        """Seconds from due time to start of the scheduled runs due since *since*
        (the collection runs an occurrence started, not their jobs)."""
        query = (
            select(schedule_occurrences.c.due_at, runs.c.started_at)
            .join(runs, runs.c.occurrence_id == schedule_occurrences.c.id)
            .where(
                schedule_occurrences.c.due_at >= since,
                runs.c.parent_run_id.is_(None),
                runs.c.started_at.is_not(None),
            )
        )
        return [max((started - due).total_seconds(), 0.0) for due, started in self._session.execute(query)]

    def worker_jobs(self) -> dict[str, int] | None:
        """Jobs of the workers' task queue waiting (``todo``) and running
        (``doing``); None where there is no such queue (no procrastinate schema)."""
        connection = self._session.connection()
        if connection.dialect.name != "postgresql" or not inspect(connection).has_table(WORKER_JOBS_TABLE):
            return None
        rows = self._session.execute(
            text(
                f"SELECT status::text, count(*) FROM {WORKER_JOBS_TABLE} "  # noqa: S608 (a constant name)
                "WHERE status IN ('todo', 'doing') GROUP BY status"
            )
        )
        found = {status: int(n) for status, n in rows}
        return {status: found.get(status, 0) for status in ("todo", "doing")}


def _finished(row: Sequence[Any]) -> FinishedRun:
    run_id, kind, counts, started_at, finished_at, own = row
    return FinishedRun(int(run_id), str(kind), Counts.from_dict(counts), started_at, finished_at, bool(own))
