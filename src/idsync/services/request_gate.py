"""The gate: a collection run that needs approval becomes a request [S3.5, S7.2, S7.5].

A claimed collection run whose jobs write to a store whose workflow covers
the run's kind (``manual`` for a manual run, ``schedule`` for the others)
is not executed: :func:`park` computes the plans of its jobs (as a preview
of the collection does, whatever its *preview* setting: approvers always
see what they approve), raises a request binding them, and leaves the run
*awaiting approval* with its lease given up, all in one transaction. A
collection run that ends *held* by a safety limit, when the workflow covers
held runs, raises a request binding the held plans (:func:`raise_held`).

Several stores with workflows: the request follows all of them (their
approvers together), needs the most approvals any of them asks, and
expires and escalates at the earliest any of them says.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from idsync import settings
from idsync.domain.collections import CollectionDefinition
from idsync.domain.definitions import JobDefinition
from idsync.domain.results import RunState
from idsync.domain.workflow import RequestKind, WorkflowSettings
from idsync.errors import IdsyncError, NotFoundError, StateConflictError
from idsync.services import collections, definitions, jobs
from idsync.services.authz import rights
from idsync.services.request_events import announce
from idsync.services.request_routing import people, routing, store_workflows
from idsync.services.workspace import Workspace
from idsync.store.requests_repo import NewPlan, RequestRepository, RequestRow
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.store.scheduling_repo import SchedulingRepository
from idsync.workflow.approvers import eligible

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gate:
    """What a request raised for a run follows: the stores whose workflows
    cover it, the approvals needed, when it expires and escalates."""

    kind: RequestKind
    stores: tuple[str, ...]
    required_approvals: int
    expires_after: timedelta
    escalate_after: timedelta | None


def kind_of(trigger: str) -> RequestKind:
    """The kind of request a run of *trigger* raises: a manual run's, or a
    schedule's (its occurrences, start-up, catch-up and run-now)."""
    return "manual" if trigger == "manual" else "schedule"


def workflows(ws: Workspace, collection: CollectionDefinition) -> dict[str, WorkflowSettings]:
    """The workflow of each destination store of the collection's jobs that has one."""
    found: dict[str, WorkflowSettings] = {}
    for entry in collection.jobs:
        try:
            job = jobs.load_job(ws, entry.job)[1]
            store = definitions.load(ws, "store", job.destination.store).definition
        except NotFoundError:
            continue  # the run says so when it gets there
        workflow = getattr(store, "workflow", None)
        if isinstance(workflow, WorkflowSettings):
            found[store.name] = workflow
    return found


def gate_for(ws: Workspace, collection: CollectionDefinition, kind: RequestKind) -> Gate | None:
    """The gate a run of *kind* of *collection* passes, or None when no workflow covers it."""
    return _gate(workflows(ws, collection), kind)


def gate_of_stores(ws: Workspace, stores: Iterable[str], kind: RequestKind) -> Gate | None:
    """The gate a run of *kind* writing to *stores* passes (a smart group update), or None."""
    return _gate(store_workflows(ws, stores), kind)


def _gate(found: Mapping[str, WorkflowSettings], kind: RequestKind) -> Gate | None:
    covering = {name: w for name, w in found.items() if w.covers(kind)}
    if not covering:
        return None
    escalations = [w.escalation.after for w in covering.values() if w.escalation is not None]
    return Gate(
        kind=kind,
        stores=tuple(sorted(covering)),
        required_approvals=max(w.required_approvals for w in covering.values()),
        expires_after=min(w.expires_after for w in covering.values()),
        escalate_after=min(escalations) if escalations else None,
    )


def requester_of(ws: Workspace, run: RunRow) -> str:
    """Who asked for *run*: the idsync user the acting principal maps to (so
    self-approval is recognised whatever account raised it), or the schedule."""
    if run.trigger != "manual" or run.requested_by != ws.actor:
        return run.requested_by
    user = rights(ws).user
    return user.name if user is not None else ws.actor


# ---------------------------------------------------------------- manual and scheduled runs


def park(ws: Workspace, run: RunRow, fence: int, clock: Callable[[], datetime]) -> RequestRow | None:
    """Compute the plans of claimed collection run *run*, raise its request and
    leave the run awaiting approval; the request, or None when the run ended
    otherwise (no plan could be computed, or another request of the
    collection is open: then the run is recorded skipped)."""
    collection = collections.load_collection(ws, run.collection_name or run.job_name)[1]
    gate = gate_for(ws, collection, kind_of(run.trigger))
    if gate is None:
        raise StateConflictError(f"run {run.id} needs no approval")
    requester = requester_of(ws, run)
    able = _eligible_now(ws, gate, requester)
    if len(able) < gate.required_approvals:
        # Fail closed: a request nobody could approve is never raised, and nothing approves itself.
        reason = (
            f"not run: the workflow of {', '.join(gate.stores)} needs {gate.required_approvals} approval(s) "
            f"but {len(able)} eligible approver(s) other than {requester} exist; nothing was applied"
        )
        with ws.db.session() as session:
            _end(session, run, fence, RunState.FAILED, reason, clock)
        return None
    fingerprints = {entry.job: fingerprint(ws, entry.job) for entry in collection.jobs}
    preview = collections.preview_collection(ws, collection.name)
    computed = clock()
    plans = [
        NewPlan(item.job, item.plan.id if item.plan else None, fingerprints.get(item.job), computed)
        for item in preview.jobs
    ]
    reason = (
        f"manual run by {requester}" if gate.kind == "manual" else f"scheduled run ({run.trigger}) by {run.requested_by}"
    )
    with ws.db.session() as session:
        runs = RunRepository(session, clock=clock)
        for item in preview.jobs:
            if item.error or item.skipped:
                runs.log(run.id, "warning", f"job {item.job!r}: no plan ({item.error or item.skipped})")
        if not any(p.plan_id is not None for p in plans):
            _end(session, run, fence, RunState.FAILED, "no plan could be computed for approval", clock)
            return None
        repo = RequestRepository(session, clock=clock)
        try:
            request_id = repo.create(
                run_id=run.id, collection_name=collection.name, stores=gate.stores, kind=gate.kind,
                reason=reason, requested_by=requester, required_approvals=gate.required_approvals,
                expires_at=computed + gate.expires_after,
                escalate_at=computed + gate.escalate_after if gate.escalate_after is not None else None,
                plans=plans,
            )
        except StateConflictError as exc:
            _end(session, run, fence, RunState.SKIPPED, f"skipped: {exc.message}", clock)
            return None
        if not repo.park_run(run.id, fence):
            raise StateConflictError(f"run {run.id} was taken from this process while its plans were computed")
        counts = preview.counts.summary() or "no change"
        runs.log(run.id, "info", f"awaiting approval: request {request_id} ({counts}); nothing is written before it is approved")
        announce(ws, session, request_id, "awaiting")
        return repo.require(request_id)


def _eligible_now(ws: Workspace, gate: Gate, requester: str) -> frozenset[str]:
    """Who could approve a request of *gate* raised by *requester*, as things stand."""
    route = routing(ws, gate.stores)
    with ws.db.session() as session:
        everyone = people(RequestRepository(session).people())
    return eligible(route, everyone, requester=requester)


def _end(
    session: Session, run: RunRow, fence: int, state: RunState, reason: str, clock: Callable[[], datetime]
) -> None:
    runs = RunRepository(session, clock=clock)
    runs.log(run.id, "error" if state is RunState.FAILED else "warning", reason)
    SchedulingRepository(session, clock=clock).finish_fenced(run.id, fence, state, run.counts, reason)


# ---------------------------------------------------------------- held runs


def raise_held(ws: Workspace, session: Session, run_id: int, clock: Callable[[], datetime]) -> int | None:
    """Collection run *run_id* just ended held: when its stores' workflow covers
    held runs, raise a request binding the held plans, in the caller's
    transaction; its id, or None."""
    runs = RunRepository(session, clock=clock)
    run = runs.require(run_id)
    try:
        collection = collections.load_collection(ws, run.collection_name or run.job_name)[1]
    except NotFoundError:
        return None
    gate = gate_for(ws, collection, "held")
    if gate is None:
        return None
    held = [child for child in runs.children(run_id) if child.state is RunState.HELD and child.plan_id is not None]
    if not held:
        return None
    now = clock()
    repo = RequestRepository(session, clock=clock)
    try:
        request_id = repo.create(
            run_id=run_id, collection_name=collection.name, stores=gate.stores, kind="held",
            reason=f"held: {run.error}" if run.error else "held by a safety limit",
            requested_by=run.requested_by, required_approvals=gate.required_approvals,
            expires_at=now + gate.expires_after,
            escalate_at=now + gate.escalate_after if gate.escalate_after is not None else None,
            plans=[_held_plan(ws, child, now) for child in held],
        )
    except StateConflictError as exc:
        runs.log(run_id, "warning", f"no request raised for the held jobs: {exc.message}")
        return None
    runs.log(run_id, "info", f"request {request_id} raised: approving it applies the held plans")
    announce(ws, session, request_id, "awaiting")
    return request_id


def _held_plan(ws: Workspace, child: RunRow, now: datetime) -> NewPlan:
    """The plan a held child run of a collection run gives its request: a
    job's, or the membership plan of a linked smart group update job, named
    :func:`smart_group_subject` so that approval applies it as one."""
    if child.kind == SMART_GROUP_RUN:
        return NewPlan(smart_group_subject(child.job_name), child.plan_id, None, now)
    return NewPlan(child.job_name, child.plan_id, fingerprint(ws, child.job_name), now)


SMART_GROUP_RUN = "smartgroup"
_SUBJECT = "smartgroup:"


def smart_group_subject(update: str) -> str:
    """What a held smart group update's request is filed under, in place of a
    collection: one pending request per update job (or group updated alone),
    apart from the requests of the collections that run it. In a collection's
    request, the name of a linked update job's held membership plan."""
    return f"{_SUBJECT}{update}"


def smart_group_of(plan_name: str) -> str | None:
    """The update job a request's plan named *plan_name* belongs to, or None for a job's plan."""
    return plan_name.removeprefix(_SUBJECT) if plan_name.startswith(_SUBJECT) else None


def raise_held_groups(
    ws: Workspace,
    session: Session,
    *,
    run_id: int,
    update: str,
    store: str,
    plan_id: int,
    reason: str,
    requested_by: str,
    clock: Callable[[], datetime],
) -> int | None:
    """Smart group update run *run_id* (of update job or group *update*) held
    groups of *store* at a limit: when the store's workflow covers held runs,
    raise a request binding plan *plan_id* (their membership changes), in the
    caller's transaction; its id, or None (no workflow covers it, or a
    request of *update* is pending already: the run's log says so)."""
    gate = gate_of_stores(ws, (store,), "held")
    if gate is None:
        return None
    now = clock()
    runs = RunRepository(session, clock=clock)
    repo = RequestRepository(session, clock=clock)
    try:
        request_id = repo.create(
            run_id=run_id, collection_name=smart_group_subject(update), stores=gate.stores, kind="held",
            reason=f"held: {reason}", requested_by=requested_by, required_approvals=gate.required_approvals,
            expires_at=now + gate.expires_after,
            escalate_at=now + gate.escalate_after if gate.escalate_after is not None else None,
            plans=[NewPlan(update, plan_id, None, now)],
        )
    except StateConflictError as exc:
        runs.log(run_id, "warning", f"no request raised for the held groups: {exc.message}")
        return None
    runs.log(run_id, "info", f"request {request_id} raised: approving it applies the held membership changes")
    announce(ws, session, request_id, "awaiting")
    return request_id


# ---------------------------------------------------------------- what a plan's source looked like


def fingerprint(ws: Workspace, job_name: str) -> str | None:
    """What the source of job *job_name* looks like now, for a file source
    (size, modification time, SHA-256 of the content); None where it cannot
    be told (a database, a directory, a file that cannot be read)."""
    try:
        job: JobDefinition = jobs.load_job(ws, job_name)[1]
        if job.source.data_source is None:
            return None
        source = definitions.load(ws, "source", job.source.data_source).definition
    except IdsyncError:
        return None
    path_text = getattr(source, "path", None)
    if not isinstance(path_text, str):
        return None
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = settings.home() / path
    try:
        stat = path.stat()
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        log.info("source of job %r: no fingerprint (%s)", job_name, exc)
        return None
    return f"size={stat.st_size};mtime={stat.st_mtime_ns};sha256={digest.hexdigest()}"
