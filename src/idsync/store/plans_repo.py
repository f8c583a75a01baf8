"""Stored plans: what a run would do, kept for review, approval and apply.

A plan can hold hundreds of thousands of changes, so it is written and read
in batches: :meth:`PlanRepository.add_changes` inserts one batch with one
``executemany`` of prepared rows (payloads serialised once, straight to
JSON text: recording a run's plan must cost little next to the run), and :meth:`PlanRepository.changes` pages through them by
sequence number (keyset pagination: each page costs the same, however deep).
The columns a plan view filters or shows (op, dn, key, new DN, anchor) are
real columns; the rest of the change (attributes, modifications with their
``before`` values) is a JSON payload.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Dialect, Row, delete, insert, select, update
from sqlalchemy.orm import Session

from idsync.domain.changes import Change, ChangeOp
from idsync.domain.results import Counts
from idsync.errors import NotFoundError
from idsync.store.serialize import change_body_text, change_from_json
from idsync.store.tables import plan_changes, plans, utcnow

PlanState = Literal["computing", "ready", "applied", "failed"]
PLAN_STATES: tuple[str, ...] = get_args(PlanState)


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

    def create(self, *, job_name: str, job_id: int | None, created_by: str = "") -> int:
        """A new plan in state ``computing``; its id."""
        result = self._session.execute(
            insert(plans).values(
                job_id=job_id,
                job_name=job_name,
                state="computing",
                created_by=created_by,
                created_at=self._clock(),
                counts=Counts().to_dict(),
                change_count=0,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[attr-defined]

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
        self._update(plan_id, state="applied", applied_run_id=run_id)

    def get(self, plan_id: int) -> PlanRow | None:
        row = self._session.execute(select(plans).where(plans.c.id == plan_id)).first()
        return _plan(row) if row is not None else None

    def require(self, plan_id: int) -> PlanRow:
        found = self.get(plan_id)
        if found is None:
            raise NotFoundError(f"no plan {plan_id} (see `idsync plan list`)")
        return found

    def list(self, *, limit: int = 50, job_name: str | None = None) -> builtins.list[PlanRow]:
        """The newest plans first."""
        query = select(plans)
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
            raise NotFoundError(f"no plan {plan_id} (see `idsync plan list`)")


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
