"""Reading history: runs, plans (lists, reports, logs, exports) and the audit log.

Listing runs or plans, or showing one, first ends what dead processes left
running or computing (:mod:`idsync.services.reaping`), so what is shown is
never a run or preview that nothing executes any more.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from idsync.domain.changes import Change, ChangeFilter, ChangeOp
from idsync.domain.results import ErrorItem, RunState
from idsync.errors import ConfigError, quoted
from idsync.services import authz
from idsync.services.plan_export import WRITERS
from idsync.services.reaping import reap_before_reading
from idsync.services.workspace import Workspace
from idsync.store import audit
from idsync.store.audit import AuditEntry
from idsync.store.keyset import Position
from idsync.store.plans_repo import PlanRepository, PlanRow
from idsync.store.runs_repo import LogLine, RunRepository, RunRow


@dataclass(frozen=True)
class RunReport:
    run: RunRow
    errors: list[ErrorItem]
    error_total: int
    log: list[LogLine]


def list_runs(
    ws: Workspace, *, job: str | None = None, state: str | None = None, limit: int = 50,
    since: datetime | None = None, before: datetime | None = None, after: Position | None = None,
) -> list[RunRow]:
    """Runs, newest first: of job or collection *job*, in *state*, created
    from *since* (included) to *before* (excluded); *after*: the (created_at,
    id) of the last run of the previous page, for the next one (keyset pagination)."""
    authz.require_reader(ws, "runs")
    if since is not None and before is not None and since >= before:
        raise ConfigError("the runs' date range ends before it starts", field="to",
                          hint="give a first day on or before the last day")
    try:
        wanted = RunState(state) if state else None
    except ValueError as exc:
        raise ConfigError(f"unknown run state {quoted(state)}; one of {', '.join(s.value for s in RunState)}") from exc
    reap_before_reading(ws)
    with ws.db.session() as session:
        return RunRepository(session).list(
            limit=limit, job_name=job, state=wanted, created_from=since, created_before=before, after=after,
        )


def run_report(ws: Workspace, run_id: int, *, max_errors: int | None = 100) -> RunReport:
    authz.require_reader(ws, "runs")
    reap_before_reading(ws)
    with ws.db.session() as session:
        runs = RunRepository(session)
        run = runs.require(run_id)
        return RunReport(run, runs.errors(run_id, max_errors), runs.error_count(run_id), runs.logs(run_id))


def list_plans(
    ws: Workspace, *, job: str | None = None, limit: int = 50, after: Position | None = None,
) -> list[PlanRow]:
    """Plans, newest first; *after*: as :func:`list_runs`."""
    authz.require_reader(ws, "plans")
    reap_before_reading(ws)
    with ws.db.session() as session:
        return PlanRepository(session).list(limit=limit, job_name=job, after=after)


def get_plan(ws: Workspace, plan_id: int) -> PlanRow:
    authz.require_reader(ws, "plans")
    reap_before_reading(ws)
    with ws.db.session() as session:
        return PlanRepository(session).require(plan_id)


def plan_errors(ws: Workspace, plan_id: int, *, limit: int | None = 100) -> tuple[list[ErrorItem], int]:
    """The record errors found while computing plan *plan_id* (the first
    *limit* of them, in the order found), and how many there are in all."""
    authz.require_reader(ws, "plans")
    with ws.db.session() as session:
        plans = PlanRepository(session)
        plans.require(plan_id)
        return [item for _, item in plans.errors(plan_id, limit=limit)], plans.error_count(plan_id)


def change_op(value: str | None) -> ChangeOp | None:
    """The kind of change a reader typed (create, update, ...), or None for
    every kind; ConfigError listing the kinds."""
    if not value:
        return None
    try:
        return ChangeOp(value.strip().lower())
    except ValueError:
        raise ConfigError(
            f"{value!r} is not a kind of change; the kinds are {', '.join(op.value for op in ChangeOp)}", field="op"
        ) from None


def plan_changes(
    ws: Workspace, plan_id: int, *, op: ChangeOp | None = None, limit: int | None = None,
    attribute: str | None = None, text: str | None = None,
) -> Iterator[Change]:
    """The plan's changes in order, read page by page: optionally one kind
    only (chosen by the database), those touching *attribute*, or those whose
    DN or values contain *text* (both without regard to case)."""
    for _seq, change in numbered_changes(ws, plan_id, op=op, limit=limit, attribute=attribute, text=text):
        yield change


def numbered_changes(
    ws: Workspace, plan_id: int, *, op: ChangeOp | None = None, limit: int | None = None,
    attribute: str | None = None, text: str | None = None, after_seq: int = -1,
) -> Iterator[tuple[int, Change]]:
    """:func:`plan_changes` with each change's number in the plan; *after_seq*:
    the number of the last change of the previous page, for the next one
    (keyset pagination: a page deep in a plan costs what the first does)."""
    authz.require_reader(ws, "plans")
    wanted = ChangeFilter(attribute=attribute, text=text)
    after, sent = after_seq, 0
    while limit is None or sent < limit:
        page_size = 1000 if limit is None or wanted != ChangeFilter() else min(1000, limit - sent)
        with ws.db.session() as session:
            page = PlanRepository(session).changes(plan_id, after_seq=after, limit=page_size, op=op)
        if not page:
            return
        for seq, change in page:
            after = seq
            if not wanted.keeps(change):
                continue
            if limit is not None and sent >= limit:
                return
            sent += 1
            yield seq, change


def export_plan(ws: Workspace, plan_id: int, fmt: str, out: TextIO) -> None:
    """Write plan *plan_id* to *out* as csv, json or ldif."""
    authz.require_reader(ws, "plans")
    writer = WRITERS.get(fmt)
    if writer is None:
        raise ConfigError(f"unknown export format {quoted(fmt)}; one of {', '.join(WRITERS)}")
    get_plan(ws, plan_id)
    writer(plan_changes(ws, plan_id), out)


def list_audit(
    ws: Workspace, *, kind: str | None = None, name: str | None = None, limit: int = 100,
    after: Position | None = None,
) -> list[AuditEntry]:
    """Configuration changes, newest first (who, when, what changed; never secret values)."""
    authz.require_reader(ws, "the audit log")
    with ws.db.session() as session:
        return audit.list_entries(session, limit=limit, object_kind=kind, object_name=name, after=after)
