"""Approved requests executed, and the sweep that keeps requests moving [S7.2, S7.4].

:func:`execute_approved` runs an approved request at once, in the process
that approved it: the run awaiting approval is claimed (with a new fence,
as any run is) and its jobs apply exactly the request's plans, with the
engine's preconditions, letting through only what every approval of the
current round approved. A held request's plans are applied as the release
of a held run is. Then the request is *executed*, with the run's outcome.
With ``--workers=external`` the approving process claims the run and hands
it to the workers instead (a job naming the request); the worker that takes
it over applies the plans through :func:`execute_claimed`, the same path.

:func:`sweep`, called by every scheduler tick, expires overdue requests,
escalates those past their escalation time, and finishes approved ones
whose execution was interrupted (the approver's process died): a run still
awaiting approval is executed; a run that ended closes its request.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.errors import IdsyncError, NotFoundError, StateConflictError, TransientError
from idsync.services import collection_runs, jobs, smartgroup_runs
from idsync.services.collection_runs import Approved, Runtime
from idsync.services.request_decisions import SYSTEM_ACTOR, record
from idsync.services.request_gate import smart_group_of
from idsync.services.request_routing import to_decision
from idsync.services.workspace import Workspace
from idsync.store import scheduling_repo
from idsync.store.plans_repo import PlanRepository
from idsync.store.requests_repo import RequestPlanRow, RequestRepository, RequestRow
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.workflow.approvers import ChangeFilter, intersect
from idsync.workflow.requests import Decision, fold

log = logging.getLogger(__name__)


HandOff = Callable[[int, int, int], None]
"""Defers the claimed run of an approved request to the workers:
``hand_off(run_id, fence, request_id)`` (``--workers=external``)."""


def execute_approved(
    ws: Workspace, request_id: int, runtime: Runtime, hand_off: HandOff | None = None
) -> RunRow | None:
    """Execute approved request *request_id* (see the module docstring); the
    run that applied it, or None when it is not approved or another process
    executes it already. With *hand_off*, a collection run is claimed here
    and handed to the workers (the run returned is still running); held
    requests and smart group updates are applied here all the same.

    The plans are applied by idsync on the approvers' behalf (a system
    principal named after the request): an approver need not be an operator,
    and the approval, not whoever's process happens to run it, is what
    authorises the writes.
    """
    ws = ws.acting_as(Principal.system(f"request {request_id}"))
    found = _approved(ws, request_id)
    if found is None:
        return None
    request, plans, allowed, by = found
    if request.kind == "held":
        pairs = [(p.job_name, p.plan_id) for p in plans]
        if _run_kind(ws, request.run_id) == smartgroup_runs.RUN_KIND:
            return _release_groups(ws, request, pairs, allowed, by, runtime)
        return _release_held(ws, request, pairs, allowed, by, runtime)
    fence = scheduling_repo.claim(
        ws.db, request.run_id, expected=RunState.AWAITING_APPROVAL, node=runtime.node, lease=runtime.lease,
        clock=runtime.clock,
    )
    if fence is None:
        return None
    where = "the workers" if hand_off is not None else runtime.node
    with ws.db.session() as session:
        RunRepository(session, clock=runtime.clock).log(
            request.run_id, "info",
            f"request {request_id} approved by {by}: applying its plans ({allowed.describe()}) on {where}",
        )
    if hand_off is not None:
        hand_off(request.run_id, fence, request_id)
        with ws.db.session() as session:
            return RunRepository(session).require(request.run_id)
    return _apply(ws, request, plans, allowed, fence, runtime)


def execute_claimed(ws: Workspace, request_id: int, run_id: int, fence: int, runtime: Runtime) -> RunRow:
    """Apply approved request *request_id* through its run *run_id*, claimed
    by another process and handed over at *fence* (a worker, once it took
    the run over): the request's plans, as :func:`execute_approved` applies them."""
    ws = ws.acting_as(Principal.system(f"request {request_id}"))
    found = _approved(ws, request_id)
    if found is None:
        raise StateConflictError(f"request {request_id} is not approved: run {run_id} applies nothing")
    request, plans, allowed, _by = found
    if request.run_id != run_id:
        raise StateConflictError(f"run {run_id} is not the run of request {request_id} (run {request.run_id} is)")
    return _apply(ws, request, plans, allowed, fence, runtime)


def _approved(
    ws: Workspace, request_id: int
) -> tuple[RequestRow, list[RequestPlanRow], ChangeFilter, str] | None:
    """Request *request_id*, its plans, what its approvals let through and by
    whom; None when it is not approved."""
    with ws.db.session() as session:
        repo = RequestRepository(session)
        request = repo.require(request_id)
        plans = repo.plans(request_id)
        status = fold([to_decision(r) for r in repo.trail(request_id)], request.required_approvals)
    if status.state != "approved":
        return None
    return request, plans, intersect(status.approvals), ", ".join(sorted(status.approvers))


def _apply(
    ws: Workspace, request: RequestRow, plans: list[RequestPlanRow], allowed: ChangeFilter, fence: int,
    runtime: Runtime,
) -> RunRow:
    """Execute the request's run, claimed at *fence*, on exactly its plans; then close the request."""
    approved = Approved(
        request.id, {p.job_name: p.plan_id for p in plans}, None if allowed.everything else allowed.allows
    )
    run = collection_runs.execute_run(ws, request.run_id, fence, runtime, approved=approved)
    _close(ws, request.id, run, runtime)
    return run


def _release_held(
    ws: Workspace,
    request: RequestRow,
    plans: list[tuple[str, int | None]],
    allowed: ChangeFilter,
    by: str,
    runtime: Runtime,
) -> RunRow | None:
    """Apply the held plans of a held request, as a release of the held run is."""
    for job_name, plan_id in plans:
        if plan_id is None:
            continue
        with ws.db.session() as session:
            plan = PlanRepository(session).get(plan_id)
        if plan is None or plan.state != "ready":
            continue  # applied (or being applied) already: an interrupted execution finishing
        update = smart_group_of(job_name)
        try:
            if update is not None:
                # A linked smart group update job's held membership changes, filtered member by member.
                smartgroup_runs.release_linked(ws, request.id, update, plan_id, None if allowed.everything else allowed.narrow)
                continue
            jobs.run_job(
                ws, job_name, plan_id=plan_id, trigger="release",
                allows=None if allowed.everything else allowed.allows, request_id=request.id,
            )
        except (StateConflictError, NotFoundError) as exc:
            log.warning("request %s: plan %s of job %r not applied: %s", request.id, plan_id, job_name, exc.message)
    with ws.db.session() as session:
        run = RunRepository(session).require(request.run_id)
        RunRepository(session, clock=runtime.clock).log(
            run.id, "info", f"request {request.id} approved by {by}: the held plans were applied ({allowed.describe()})"
        )
    _close(ws, request.id, run, runtime)
    return run


def _run_kind(ws: Workspace, run_id: int) -> str:
    with ws.db.session() as session:
        return RunRepository(session).require(run_id).kind


def _release_groups(
    ws: Workspace,
    request: RequestRow,
    plans: list[tuple[str, int | None]],
    allowed: ChangeFilter,
    by: str,
    runtime: Runtime,
) -> RunRow | None:
    """Apply the membership plan of a smart group update held at a limit: exactly
    its changes, the groups (by DN) and members (``GROUP;MEMBER``) excluded by an approval left out."""
    store = request.stores[0]
    released = smartgroup_runs.release(
        ws, request.id, store, plans, None if allowed.everything else allowed.narrow
    )
    with ws.db.session() as session:
        run = released or RunRepository(session).require(request.run_id)
        RunRepository(session, clock=runtime.clock).log(
            request.run_id, "info",
            f"request {request.id} approved by {by}: the held membership changes were applied "
            f"({allowed.describe()})" + (f" by run {released.id}" if released is not None else ""),
        )
    _close(ws, request.id, run, runtime)
    return run


def _close(ws: Workspace, request_id: int, run: RunRow, runtime: Runtime) -> None:
    """Record that request *request_id* was executed, with its run's outcome."""
    if not run.state.finished:
        return  # still running elsewhere, or parked again: the sweep closes it once it ends
    outcome = f"run {run.id} {run.state.value}" + (f": {run.counts.summary()}" if run.counts.summary() else "")
    with contextlib.suppress(StateConflictError):  # closed already (by the sweep, or another process)
        record(
            ws, request_id, Decision(SYSTEM_ACTOR, "execute", runtime.clock(), comment=outcome),
            outcome=lambda _now, _status: outcome, clock=runtime.clock,
        )


# ---------------------------------------------------------------- the sweep


def sweep(ws: Workspace, runtime: Runtime, hand_off: HandOff | None = None) -> list[str]:
    """Expire, escalate and finish requests (see the module docstring); a line
    per thing done. With *hand_off* (a node deferring its runs to the
    workers), an interrupted execution is handed to them as well.
    TransientError goes up (the database is away: the tick is tried again);
    a request that cannot be moved is logged and left."""
    now = runtime.clock()
    with ws.db.session() as session:
        open_ = RequestRepository(session).list(states=("pending", "approved"), limit=None)
    done: list[str] = []
    for request in reversed(open_):
        try:
            line = _sweep_one(ws, request, now, runtime, hand_off)
        except TransientError:
            raise
        except IdsyncError as exc:
            line = f"request {request.id}: {exc.message}"
            log.warning("%s", line)
        if line:
            done.append(line)
    return done


def _sweep_one(ws: Workspace, request: RequestRow, now: datetime, runtime: Runtime,
               hand_off: HandOff | None) -> str | None:
    if request.state == "pending" and now >= request.expires_at:
        record(ws, request.id, Decision(SYSTEM_ACTOR, "expire", now), clock=runtime.clock)
        return f"request {request.id} of collection {request.collection_name!r} expired"
    if request.state == "pending" and request.escalate_at is not None and now >= request.escalate_at:
        record(
            ws, request.id, Decision(SYSTEM_ACTOR, "escalate", now), clock=runtime.clock,
            escalate_at=None, escalation_step=request.escalation_step + 1,
        )
        return f"request {request.id} of collection {request.collection_name!r} escalated"
    if request.state != "approved":
        return None
    if request.kind == "held":
        executed = execute_approved(ws, request.id, runtime)
        return f"request {request.id}: the held plans were applied" if executed is not None else None
    with ws.db.session() as session:
        run = RunRepository(session).require(request.run_id)
    if run.state is RunState.AWAITING_APPROVAL:
        executed = execute_approved(ws, request.id, runtime, hand_off)
        return f"request {request.id}: its interrupted execution was taken up" if executed is not None else None
    if run.state.finished:
        _close(ws, request.id, run, runtime)
        return f"request {request.id} closed: run {run.id} {run.state.value}"
    return None
