"""Stored plans: what a run would do, kept for review, approval and apply.

A plan can hold hundreds of thousands of changes, so it is written and read
in batches: :meth:`PlanRepository.add_changes` inserts one batch with one
``executemany`` of prepared rows (payloads serialised once, straight to
JSON text: recording a run's plan must cost little next to the run), and :meth:`PlanRepository.changes` pages through them by
sequence number (keyset pagination: each page costs the same, however deep).
The columns a plan view filters or shows (op, dn, key, new DN, anchor) are
real columns; the rest of the change (attributes, modifications with their
``before`` values) is a JSON payload. The record errors found while
computing a plan are kept with it (``plan_errors``).

A plan's life: ``computing`` → ``ready`` (or ``failed``: it could not be
computed) → ``applying`` → ``applied``. A run takes a ready plan with
:meth:`PlanRepository.claim`, one conditional UPDATE: of two runs claiming
the same plan, one matches the row and the other matches nothing and is
refused. A run that fails (or is stopped) gives the plan back with
:meth:`PlanRepository.release`: ready again, the failure noted in ``error``;
applying it again finds what the failed run wrote already in place.

A preview computes its plan under a lease (``node``, ``lease_until``) that
its heartbeat renews (:meth:`PlanRepository.renew_preview`). Nothing stays
``computing`` after its process died: :meth:`PlanRepository.expire_previews`
marks failed the plans whose preview lease ran out, and
:meth:`PlanRepository.fail_orphans` those whose run ended without finishing
them (a killed run's plan).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import Dialect, Row, delete, func, insert, select, update
from sqlalchemy.orm import Session

from idsync.domain.changes import Change, ChangeOp
from idsync.domain.results import Counts, ErrorItem, RunState
from idsync.errors import NotFoundError, StateConflictError
from idsync.store.keyset import Position, older_than
from idsync.store.serialize import change_body_text, change_from_json, error_rows
from idsync.store.tables import plan_changes, plan_errors, plans, runs, utcnow

PlanState = Literal["computing", "ready", "applying", "applied", "failed"]
PLAN_STATES: tuple[str, ...] = get_args(PlanState)

PREVIEW_LOST = "preview process lost (lease expired): the plan is incomplete"
"""The error recorded on a plan whose preview stopped renewing its lease."""


@dataclass(frozen=True)
class PlanRow:
    """A plan as stored, without its changes."""

    id: int
    job_id: int | None
    job_name: str
    state: str
    created_by: str
    created_at: datetime
    counts: Counts
    change_count: int
    applied_run_id: int | None
    error: str | None


class PlanRepository:
    """Reads and writes plans; the caller's session decides when it is committed."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock

    def create(
        self,
        *,
        job_name: str,
        job_id: int | None,
        created_by: str = "",
        node: str | None = None,
        lease: timedelta | None = None,
    ) -> int:
        """A new plan in state ``computing``; its id. A preview names its *node*
        and holds a *lease* on the plan; a run's plan has neither."""
        now = self._clock()
        result = self._session.execute(
            insert(plans).values(
                job_id=job_id,
                job_name=job_name,
                state="computing",
                created_by=created_by,
                created_at=now,
                counts=Counts().to_dict(),
                change_count=0,
                node=node,
                lease_until=now + lease if lease is not None else None,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[attr-defined]

    def renew_preview(self, plan_id: int, lease: timedelta) -> bool:
        """Extend the lease of a plan this preview computes; False when it is no
        longer computing (it was marked failed: this process was taken for dead)."""
        result = self._session.execute(
            update(plans)
            .where(plans.c.id == plan_id, plans.c.state == "computing")
            .values(lease_until=self._clock() + lease)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def finish_preview(self, plan_id: int, state: str, counts: Counts, error: str | None = None) -> bool:
        """The preview ends its plan (``ready`` or ``failed``) and its lease;
        False, nothing written, when the plan was no longer computing."""
        result = self._session.execute(
            update(plans)
            .where(plans.c.id == plan_id, plans.c.state == "computing")
            .values(state=state, counts=counts.to_dict(), error=error, lease_until=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def expire_previews(self) -> builtins.list[int]:
        """Mark failed the plans whose preview lease ran out (its process is
        gone); their ids."""
        now = self._clock()
        lost = [
            int(row.id)
            for row in self._session.execute(
                select(plans.c.id).where(
                    plans.c.state == "computing", plans.c.lease_until.is_not(None), plans.c.lease_until < now
                )
            )
        ]
        if lost:
            self._session.execute(
                update(plans)
                .where(plans.c.id.in_(lost), plans.c.state == "computing", plans.c.lease_until < now)
                .values(state="failed", error=PREVIEW_LOST, lease_until=None)
            )
        return lost

    def fail_orphans(self) -> builtins.list[int]:
        """Mark failed the plans still computing for a run that has ended
        (killed while planning, then marked failed); their ids."""
        finished = [s.value for s in RunState if s.finished]
        # The few plans computing first (ix_plans_state), then their runs:
        # joined the other way, the database reads every finished run.
        computing = list(self._session.execute(select(plans.c.id).where(plans.c.state == "computing")).scalars())
        if not computing:
            return []
        orphans = self._session.execute(
            select(plans.c.id, runs.c.id.label("run_id"), runs.c.state, runs.c.error)
            .select_from(plans.join(runs, runs.c.plan_id == plans.c.id))
            .where(plans.c.id.in_(computing), runs.c.state.in_(finished))
        ).all()
        for plan_id, run_id, state, error in orphans:
            self._session.execute(
                update(plans)
                .where(plans.c.id == plan_id, plans.c.state == "computing")
                .values(state="failed", error=stopped_note(run_id, state, error))
            )
        return sorted({int(row[0]) for row in orphans})

    def add_changes(self, plan_id: int, changes: Sequence[Change], first_seq: int) -> None:
        """Append one batch, numbered from *first_seq*, and count it on the plan."""
        if not changes:
            return
        connection = self._session.connection()
        connection.exec_driver_sql(
            _insert_changes_sql(connection.dialect),
            [
                (
                    plan_id,
                    first_seq + offset,
                    change.op.value,
                    change.dn,
                    change.key,
                    change.new_dn,
                    change.anchor,
                    change_body_text(change),
                )
                for offset, change in enumerate(changes)
            ],
        )
        self._session.execute(
            update(plans)
            .where(plans.c.id == plan_id)
            .values(change_count=plans.c.change_count + len(changes))
        )

    def finish(self, plan_id: int, state: str, counts: Counts, error: str | None = None) -> None:
        """The plan is complete (``ready``) or could not be computed (``failed``)."""
        if state not in PLAN_STATES:
            raise ValueError(f"unknown plan state {state!r} (one of {', '.join(PLAN_STATES)})")
        self._update(plan_id, state=state, counts=counts.to_dict(), error=error)

    def mark_applied(self, plan_id: int, run_id: int) -> None:
        """The run *run_id* applied this plan."""
        self._update(plan_id, state="applied", applied_run_id=run_id, error=None)

    def claim(self, plan_id: int, run_id: int) -> None:
        """Take ready plan *plan_id* for run *run_id* (state ``applying``).

        One conditional UPDATE: of two runs claiming one plan, only one
        matches it. Raises StateConflictError when the plan is not ready
        (being applied, applied, still computing, or failed), NotFoundError
        when there is no such plan.
        """
        result = self._session.execute(
            update(plans)
            .where(plans.c.id == plan_id, plans.c.state == "ready")
            .values(state="applying", applied_run_id=run_id)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            return
        raise _not_ready(self.require(plan_id))

    def release(self, plan_id: int, run_id: int, reason: str) -> bool:
        """Run *run_id* stopped before applying all of plan *plan_id*: the plan
        is ready again, with *reason* noted. False when the run no longer held it."""
        result = self._session.execute(
            update(plans)
            .where(plans.c.id == plan_id, plans.c.state == "applying", plans.c.applied_run_id == run_id)
            .values(state="ready", applied_run_id=None, error=reason)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def release_orphans(self) -> builtins.list[int]:
        """Give back (ready again) the plans held by runs that ended without
        releasing them (their process died); their ids."""
        finished = [s.value for s in RunState if s.finished]
        orphans = self._session.execute(
            select(plans.c.id, runs.c.id.label("run_id"), runs.c.state, runs.c.error)
            .select_from(plans.join(runs, runs.c.id == plans.c.applied_run_id))
            .where(plans.c.state == "applying", runs.c.state.in_(finished))
        ).all()
        for plan_id, run_id, state, error in orphans:
            self.release(plan_id, run_id, stopped_note(run_id, state, error))
        return [int(row[0]) for row in orphans]

    def add_errors(self, plan_id: int, items: Sequence[ErrorItem]) -> None:
        """Keep record errors found while computing plan *plan_id*."""
        if not items:
            return
        self._session.execute(
            insert(plan_errors),
            error_rows(items, plan_id=plan_id),
        )

    def errors(self, plan_id: int, *, after: int = 0, limit: int | None = None) -> builtins.list[tuple[int, ErrorItem]]:
        """The record errors of a plan as (id, error), in the order they were
        found; pass the last id as *after* for the next page."""
        query = (
            select(plan_errors)
            .where(plan_errors.c.plan_id == plan_id, plan_errors.c.id > after)
            .order_by(plan_errors.c.id)
        )
        if limit is not None:
            query = query.limit(limit)
        return [
            (
                int(row.id),
                ErrorItem(message=row.message, key=row.key, attribute=row.attribute, line=row.line, dn=row.dn),
            )
            for row in self._session.execute(query)
        ]

    def error_count(self, plan_id: int) -> int:
        query = select(func.count()).select_from(plan_errors).where(plan_errors.c.plan_id == plan_id)
        return int(self._session.execute(query).scalar_one())

    def get(self, plan_id: int) -> PlanRow | None:
        row = self._session.execute(select(plans).where(plans.c.id == plan_id)).first()
        return _plan(row) if row is not None else None

    def require(self, plan_id: int) -> PlanRow:
        found = self.get(plan_id)
        if found is None:
            raise _no_plan(plan_id)
        return found

    def list(
        self, *, limit: int = 50, job_name: str | None = None, after: Position | None = None,
    ) -> builtins.list[PlanRow]:
        """The newest plans first; with *after*, those after that position (keyset pagination)."""
        query = select(plans)
        if after is not None:
            query = query.where(older_than(plans.c.created_at, plans.c.id, after))
        if job_name is not None:
            query = query.where(plans.c.job_name == job_name)
        query = query.order_by(plans.c.created_at.desc(), plans.c.id.desc()).limit(limit)
        return [_plan(row) for row in self._session.execute(query)]

    def changes(
        self,
        plan_id: int,
        *,
        after_seq: int = -1,
        limit: int = 1000,
        op: ChangeOp | None = None,
    ) -> builtins.list[tuple[int, Change]]:
        """The next page of changes after *after_seq*, as (seq, change), in plan order.

        Pass the last seq of a page as *after_seq* to get the next one; an
        empty page means the end.
        """
        query = select(
            plan_changes.c.seq,
            plan_changes.c.op,
            plan_changes.c.dn,
            plan_changes.c.key,
            plan_changes.c.new_dn,
            plan_changes.c.anchor,
            plan_changes.c.payload,
        ).where(plan_changes.c.plan_id == plan_id, plan_changes.c.seq > after_seq)
        if op is not None:
            query = query.where(plan_changes.c.op == op.value)
        query = query.order_by(plan_changes.c.seq).limit(limit)
        page: builtins.list[tuple[int, Change]] = []
        for seq, op_value, dn, key, new_dn, anchor, payload in self._session.execute(query):
            data = dict(payload or {})
            data.update(op=op_value, dn=dn, key=key, new_dn=new_dn, anchor=anchor)
            page.append((seq, change_from_json(data)))
        return page

    def delete(self, plan_id: int) -> bool:
        """Forget a plan and its changes (retention); runs keep their rows. False if absent."""
        result = self._session.execute(delete(plans).where(plans.c.id == plan_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _update(self, plan_id: int, **values: Any) -> None:
        result = self._session.execute(update(plans).where(plans.c.id == plan_id).values(**values))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise _no_plan(plan_id)


def _no_plan(plan_id: int) -> NotFoundError:
    return NotFoundError(f"no plan {plan_id}", hint="list the plans to see which exist")


def stopped_note(run_id: int, state: str, error: str | None) -> str:
    """What a plan keeps of the run that stopped applying it: ``run 7 failed: <cause>``."""
    return f"run {run_id} {state}: {error}" if error else f"run {run_id} {state}"


def _not_ready(plan: PlanRow) -> StateConflictError:
    """Why *plan* cannot be applied now."""
    if plan.state == "applying":
        return StateConflictError(
            f"plan {plan.id} is being applied by run {plan.applied_run_id}",
            hint="wait for that run to finish; if it fails, the plan is ready again",
        )
    if plan.state == "applied":
        by = f" by run {plan.applied_run_id}" if plan.applied_run_id is not None else ""
        return StateConflictError(f"plan {plan.id} is already applied{by}", hint="preview the job again for a new plan")
    if plan.state == "computing":
        return StateConflictError(
            f"plan {plan.id} is still being computed", hint="wait until it is ready, then apply it"
        )
    return StateConflictError(
        f"plan {plan.id} is {plan.state}: it could not be computed, so it cannot be applied",
        hint="preview the job again for a new plan",
    )


_CHANGE_COLUMNS = ("plan_id", "seq", "op", "dn", "key", "new_dn", "anchor", "payload")
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _insert_changes_sql(dialect: Dialect) -> str:
    """The INSERT of one plan change, in the driver's own parameter style.

    The payload arrives as JSON text; PostgreSQL is told it is JSON, SQLite
    stores the text as SQLAlchemy's JSON type would.
    """
    mark = _PLACEHOLDERS.get(dialect.paramstyle)
    if mark is None:
        raise ValueError(f"database driver parameter style {dialect.paramstyle!r} is not supported")
    quote = dialect.identifier_preparer.quote
    values = [mark] * len(_CHANGE_COLUMNS)
    if dialect.name == "postgresql":
        values[-1] = f"CAST({mark} AS JSON)"
    # Built from the table's own names and fixed placeholders only: no data in it.
    return (
        f"INSERT INTO {quote(plan_changes.name)} ({', '.join(quote(c) for c in _CHANGE_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join(values)})"
    )


def _plan(row: Row[Any]) -> PlanRow:
    return PlanRow(
        id=row.id,
        job_id=row.job_id,
        job_name=row.job_name,
        state=row.state,
        created_by=row.created_by,
        created_at=row.created_at,
        counts=Counts.from_dict(row.counts),
        change_count=row.change_count,
        applied_run_id=row.applied_run_id,
        error=row.error,
    )
