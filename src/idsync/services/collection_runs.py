"""Running job collections: start (with the overlap rule), execute, terminate.

A collection run is started in two steps. :func:`start_run` records it and
claims it for this node, in one transaction (:func:`start_in`, in the
caller's: a schedule's occurrence commits with its runs); the database
refuses a second running run of the same collection, and the collection's
overlap policy decides what happens then: ``skip`` ends the new run as
*skipped* with the reason, ``queue`` puts it in the collection's queue (one
place: a second waiting run is skipped).
:func:`execute_run` then runs the jobs in order under a lease renewed by a
heartbeat, each as a child run, and writes the result only if this node
still holds the run (its fence).

A run whose stores' workflow covers it does not execute its jobs: it is
parked *awaiting approval* behind a request (:mod:`idsync.services.request_gate`);
once approved, :func:`execute_run` runs it with *approved*: each job applies
exactly its stored plan, filtered by what the approvals let through. While a
collection has an open request, a scheduled run of it is skipped with the
reason and a manual one is refused.

A run stops between two batches when it is terminated (``idsync run
terminate``), when it runs longer than its trigger's ``stop_after``, when its
node shuts down, or when the node lost its lease. The changes applied before
stay, and are listed in the job runs' plans.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from sqlalchemy.orm import Session

from idsync import logcontext
from idsync.domain.changes import Change
from idsync.domain.collections import CollectionDefinition, CollectionJob
from idsync.domain.results import Counts, RunState
from idsync.domain.roles import Role
from idsync.errors import IdsyncError, StateConflictError, TransientError
from idsync.services import collections, jobs, notifications, request_gate, smartgroup_runs
from idsync.services.authz import require as require_role
from idsync.services.workspace import Workspace
from idsync.store import audit, scheduling_repo
from idsync.store.collections_repo import CollectionRunRepository
from idsync.store.leases import LEASE_LOST, Heartbeat, default_node
from idsync.store.requests_repo import RequestRepository, RequestRow
from idsync.store.retry import retry_transient
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.store.scheduling_repo import SchedulingRepository
from idsync.store.tables import utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_LEASE = timedelta(seconds=60)
SHUTDOWN_REASON = "terminated: the scheduler was shut down"
STOP_POLL_SECONDS = 1.0


@dataclass
class Runtime:
    """How this process runs collections: its node name, lease length, clock,
    and the shutdown signal every run it executes listens to."""

    node: str = field(default_factory=default_node)
    lease: timedelta = DEFAULT_LEASE
    clock: Callable[[], datetime] = utcnow
    shutdown: threading.Event = field(default_factory=threading.Event)
    shutdown_reason: str = SHUTDOWN_REASON


@dataclass(frozen=True)
class Started:
    """The outcome of starting a collection run: running (with the fence this
    node holds), queued, or skipped (with the reason)."""

    run_id: int
    collection: str
    state: RunState
    fence: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Approved:
    """What an approved request lets a run do: apply these plans (job name to
    plan id; None: no plan could be computed for the job) and of their
    changes only those *allows* lets through (None: all)."""

    request_id: int
    plans: Mapping[str, int | None]
    allows: Callable[[Change], bool] | None = None


@dataclass(frozen=True)
class CollectionReport:
    """A collection run with its job runs."""

    run: RunRow
    jobs: list[RunRow]


# ---------------------------------------------------------------- start


def start_run(
    ws: Workspace,
    name: str,
    runtime: Runtime,
    *,
    trigger: str = "manual",
    requested_by: str | None = None,
    occurrence_id: int | None = None,
    stop_after: timedelta | None = None,
) -> Started:
    """Record a run of collection *name* and claim it for this node, following
    the collection's overlap policy when another run of it is running."""
    require_role(ws, Role.OPERATOR, "run collections")
    collection_id, collection = collections.load_collection(ws, name)
    with ws.db.session() as session:
        return start_in(
            session, collection_id, collection, runtime, trigger=trigger,
            requested_by=requested_by if requested_by is not None else ws.actor,
            occurrence_id=occurrence_id, stop_after=stop_after,
        )


def start_in(
    session: Session,
    collection_id: int,
    collection: CollectionDefinition,
    runtime: Runtime,
    *,
    trigger: str,
    requested_by: str,
    occurrence_id: int | None = None,
    stop_after: timedelta | None = None,
) -> Started:
    """:func:`start_run` in the caller's transaction: the run is created and
    then claimed, queued or skipped there, so it commits together with what
    caused it (a schedule's occurrence) and is never left pending."""
    return start_many(session, runtime, [
        StartRequest(collection_id, collection, trigger, requested_by, occurrence_id, stop_after)
    ])[0]


@dataclass(frozen=True)
class StartRequest:
    """A run to start in :func:`start_many`: of which collection, why, by whom."""

    collection_id: int
    collection: CollectionDefinition
    trigger: str
    requested_by: str
    occurrence_id: int | None = None
    stop_after: timedelta | None = None


@dataclass(frozen=True)
class _Created:
    run_id: int
    request: StartRequest
    waiting: RequestRow | None


def start_many(session: Session, runtime: Runtime, wanted: Sequence[StartRequest]) -> list[Started]:
    """:func:`start_in` for several runs in the caller's transaction, in
    order: each run is created, all are audited at once (one lock on the
    audit trail for them all, taken before any claim, as for one run), then
    each is claimed, queued or skipped. A scheduler firing a minute's
    occurrences records their runs this way."""
    repo = CollectionRunRepository(session, clock=runtime.clock)
    scheduling = SchedulingRepository(session, clock=runtime.clock)
    open_requests = RequestRepository(session).open_for_many([request.collection.name for request in wanted])
    created: list[_Created] = []
    for request in wanted:
        name = request.collection.name
        waiting = open_requests.get(name)
        if waiting is not None and request.trigger == "manual":
            raise StateConflictError(
                f"collection {name!r} has request {waiting.id} {_open_text(waiting.state)}: it cannot run again "
                "before that request is closed",
                field="collection",
                hint="decide or cancel that request first",
            )
        run_id = repo.create(
            collection_id=request.collection_id,
            collection_name=name,
            trigger=request.trigger,
            requested_by=request.requested_by,
            occurrence_id=request.occurrence_id,
            stop_after=int(request.stop_after.total_seconds()) if request.stop_after else None,
        )
        created.append(_Created(run_id, request, waiting))
    audit.record_many(session, [
        {"at": runtime.clock(), "actor": item.request.requested_by, "action": "run.start",
         "object_kind": "collection", "object_name": item.request.collection.name,
         "detail": {"run": item.run_id, "trigger": item.request.trigger}}
        for item in created
    ])
    claimed = _claim_at_once(repo, scheduling, runtime, created)
    return [claimed.get(item.run_id) or _settle(repo, scheduling, runtime, item) for item in created]


def _claim_at_once(
    repo: CollectionRunRepository, scheduling: SchedulingRepository, runtime: Runtime, created: list[_Created]
) -> dict[int, Started]:
    """Claim the created runs that no request holds back in one statement,
    by run id; nothing when the database refuses one of them (a collection
    already running: each is then settled alone, by its overlap rule)."""
    free = [item for item in created if item.waiting is None]
    if len(free) < 2:
        return {}
    fences = scheduling.claim_runs([item.run_id for item in free], node=runtime.node, lease=runtime.lease)
    if fences is None:
        return {}
    started: dict[int, Started] = {}
    lines: list[tuple[int, str, str]] = []
    for item in free:
        fence = fences.get(item.run_id)
        if fence is None:
            continue
        name, trigger = item.request.collection.name, item.request.trigger
        started[item.run_id] = Started(item.run_id, name, RunState.RUNNING, fence)
        lines.append((item.run_id, "info", f"run of collection {name!r} started ({trigger}) on {runtime.node}"))
    repo.runs.log_many(lines)
    return started


def _settle(
    repo: CollectionRunRepository, scheduling: SchedulingRepository, runtime: Runtime, created: _Created
) -> Started:
    """Claim a created run for this node, or queue or skip it."""
    run_id, collection, trigger = created.run_id, created.request.collection, created.request.trigger
    name = collection.name
    if created.waiting is not None:
        reason = f"skipped: request {created.waiting.id} {_open_text(created.waiting.state)}"
        repo.record_ended(run_id, RunState.SKIPPED, reason)
        return Started(run_id, name, RunState.SKIPPED, reason=reason)
    for _attempt in range(3):
        fence = scheduling.claim_run(run_id, expected=RunState.PENDING, node=runtime.node, lease=runtime.lease)
        if fence is not None:
            repo.runs.log(run_id, "info", f"run of collection {name!r} started ({trigger}) on {runtime.node}")
            return Started(run_id, name, RunState.RUNNING, fence)
        holder = scheduling.holder(name)
        if holder is not None:
            return _overlap(repo, scheduling, run_id, collection, holder)
    reason = f"skipped: run {run_id} could not be started (the database refused it three times)"
    repo.record_ended(run_id, RunState.SKIPPED, reason)
    return Started(run_id, name, RunState.SKIPPED, reason=reason)


def _open_text(state: str) -> str:
    return "awaits approval" if state == "pending" else "is approved and being executed"


def _overlap(
    repo: CollectionRunRepository,
    scheduling: SchedulingRepository,
    run_id: int,
    collection: CollectionDefinition,
    holder: int,
) -> Started:
    name = collection.name
    if collection.overlap == "queue":
        if scheduling.enqueue_run(run_id):
            repo.runs.log(
                run_id, "info", f"queued: collection {name!r} is running (run {holder}); this run starts after it"
            )
            return Started(run_id, name, RunState.QUEUED, reason=f"waiting for run {holder}")
        waiting = scheduling.holder(name, RunState.QUEUED)
        reason = (
            f"skipped: collection {name!r} is running (run {holder}) and run {waiting} "
            "already waits in its queue (overlap: queue holds one run)"
        )
    else:
        reason = f"skipped: collection {name!r} was still running (run {holder}; overlap: skip)"
    repo.record_ended(run_id, RunState.SKIPPED, reason)
    return Started(run_id, name, RunState.SKIPPED, reason=reason)


def promote_queued(ws: Workspace, runtime: Runtime, collection: str | None = None) -> list[Started]:
    """Claim the queued runs whose collection has no running run (any node may)."""
    with ws.db.session() as session:
        queued = SchedulingRepository(session).queued_runs()
    started = []
    for run_id, name in queued:
        if collection is not None and name != collection:
            continue
        fence = scheduling_repo.claim(
            ws.db, run_id, expected=RunState.QUEUED, node=runtime.node, lease=runtime.lease, clock=runtime.clock
        )
        if fence is not None:
            _log(ws, run_id, "info", f"started from the queue on {runtime.node}")
            started.append(Started(run_id, name, RunState.RUNNING, fence))
    return started


# ---------------------------------------------------------------- execute


class _StopWatch:
    """Why this collection run should stop now, if it should: the node shuts
    down, the lease was lost, it ran past stop_after, or someone terminated it."""

    def __init__(self, ws: Workspace, run: RunRow, runtime: Runtime, heartbeat: Heartbeat) -> None:
        self.ws = ws
        self.run = run
        self.runtime = runtime
        self.heartbeat = heartbeat
        started = run.started_at or runtime.clock()
        self.deadline = started + timedelta(seconds=run.stop_after) if run.stop_after else None
        self._last_poll = float("-inf")
        self.reason: str | None = None

    def __call__(self) -> str | None:
        if self.reason is None:
            self.reason = self._check()
        return self.reason

    def _check(self) -> str | None:
        if self.runtime.shutdown.is_set():
            return self.runtime.shutdown_reason
        if self.heartbeat.lost.is_set():
            return LEASE_LOST
        if self.deadline is not None and self.runtime.clock() >= self.deadline:
            return f"stopped: ran longer than its limit of {_duration(self.run.stop_after or 0)} (stop_after)"
        now = time.monotonic()
        if now - self._last_poll >= STOP_POLL_SECONDS:
            self._last_poll = now
            try:
                with self.ws.db.session() as session:
                    return RunRepository(session).stop_requested(self.run.id)
            except TransientError:
                return None  # the database is away for a moment: asked again at the next poll
        return None


def execute_run(
    ws: Workspace, run_id: int, fence: int, runtime: Runtime, *, approved: Approved | None = None
) -> RunRow:
    """Run the jobs of claimed collection run *run_id* in order; the finished run
    (or the run awaiting approval, when its stores' workflow covers it: see
    :func:`idsync.services.request_gate.park`). With *approved*, the jobs
    apply the approved plans and nothing is asked again.

    A job that fails aborts the jobs after it (recorded as skipped) when its
    on_failure is abort, and lets them run when it is continue; either way the
    collection run fails, naming the failed jobs. Counts add up the jobs'.
    Lines logged meanwhile name the run, its collection and this node.
    """
    with logcontext.bound(run_id=run_id, node=runtime.node):
        run = _keep_trying(runtime, f"run {run_id}: reading it", lambda: _read(ws, run_id))
        with logcontext.bound(collection=run.collection_name):
            return _execute_read(ws, run, fence, runtime, approved)


def _execute_read(ws: Workspace, run: RunRow, fence: int, runtime: Runtime, approved: Approved | None) -> RunRow:
    run_id = run.id
    if run.state is not RunState.RUNNING or run.fence != fence:
        _log(ws, run_id, "warning", f"{runtime.node} no longer held this run: it was not executed")
        return run
    try:
        with Heartbeat(ws.db, run_id, fence, runtime.lease, clock=runtime.clock) as heartbeat:
            if approved is None and _needs_approval(ws, run):
                request_gate.park(ws, run, fence, runtime.clock)
                return _keep_trying(runtime, f"run {run_id}: reading it", lambda: _read(ws, run_id))
            stop = _StopWatch(ws, run, runtime, heartbeat)
            state, counts, error = _run_jobs(ws, run, stop, runtime, approved)
    except BaseException as exc:
        # Whatever ended it, the run is recorded failed with the cause (never left running), then it goes on up.
        _record_crash(ws, run_id, fence, runtime, exc)
        raise
    _keep_trying(
        runtime, f"run {run_id}: recording its result",
        lambda: _write_result(ws, run_id, fence, runtime, state, counts, error, gated=approved is None),
    )
    return _keep_trying(runtime, f"run {run_id}: reading it", lambda: _read(ws, run_id))


def _needs_approval(ws: Workspace, run: RunRow) -> bool:
    """Whether a workflow of the collection's stores covers this run's kind."""
    try:
        _id, collection = collections.load_collection(ws, run.collection_name or run.job_name)
    except IdsyncError:
        return False  # the run fails saying why
    return request_gate.gate_for(ws, collection, request_gate.kind_of(run.trigger)) is not None


def _write_result(
    ws: Workspace,
    run_id: int,
    fence: int,
    runtime: Runtime,
    state: RunState,
    counts: Counts,
    error: str | None,
    *,
    gated: bool = True,
) -> None:
    with ws.db.session() as session:
        repo = RunRepository(session, clock=runtime.clock)
        if error:
            repo.log(run_id, "error" if state is RunState.FAILED else "warning", error)
        repo.log(run_id, "info", f"finished {state.value}: {counts.summary()}")
        written = SchedulingRepository(session, clock=runtime.clock).finish_fenced(run_id, fence, state, counts, error)
        if not written:
            repo.log(run_id, "warning", f"{runtime.node} no longer held this run: its result ({state.value}) was not written")
        else:
            # Same transaction: the run's result and its notifications are committed together.
            notifications.enqueue_run(ws, session, run_id, clock=runtime.clock)
            if state is RunState.HELD and gated:
                request_gate.raise_held(ws, session, run_id, runtime.clock)


def _read(ws: Workspace, run_id: int) -> RunRow:
    with ws.db.session() as session:
        return RunRepository(session).require(run_id)


def _keep_trying(runtime: Runtime, what: str, action: Callable[[], T]) -> T:
    """*action* (one transaction of a run's bookkeeping), tried again while the
    database is away for a moment, until this node shuts down."""
    return retry_transient(action, what=what, stop=runtime.shutdown)


def _record_crash(ws: Workspace, run_id: int, fence: int, runtime: Runtime, exc: BaseException) -> None:
    """Record collection run *run_id* failed by an exception the run did not
    handle; a failure to record it is logged, never raised over *exc*."""
    text = str(exc).strip().splitlines()
    cause = exc.message if isinstance(exc, IdsyncError) else (
        f"unexpected error {type(exc).__name__}" + (f": {text[0]}" if text else "")
    )

    def record() -> None:
        with ws.db.session() as session:
            repo = RunRepository(session, clock=runtime.clock)
            counts = repo.require(run_id).counts
            repo.log(run_id, "error", cause)
            if SchedulingRepository(session, clock=runtime.clock).finish_fenced(
                run_id, fence, RunState.FAILED, counts, cause
            ):
                notifications.enqueue_run(ws, session, run_id, clock=runtime.clock)

    try:
        _keep_trying(runtime, f"run {run_id}: recording its failure", record)
    except IdsyncError as exc:
        log.warning("run %s: its failure could not be recorded (its lease will run out): %s", run_id, exc.message)
    except Exception:
        log.exception("run %s: its failure could not be recorded (its lease will run out)", run_id)


def _run_jobs(
    ws: Workspace, run: RunRow, stop: _StopWatch, runtime: Runtime, approved: Approved | None = None
) -> tuple[RunState, Counts, str | None]:
    counts = Counts()
    try:
        _id, collection = collections.load_collection(ws, run.collection_name or run.job_name)
    except IdsyncError as exc:
        return RunState.FAILED, counts, f"collection {run.collection_name!r} cannot be run: {exc.message}"
    failures: list[str] = []
    held: list[str] = []
    any_errors = False
    ended_by: str | None = None
    entries = list(collection.jobs)
    child_error: str | None
    for index, entry in enumerate(entries):
        reason = stop()
        if reason is not None:
            ended_by = reason
            _skip_rest(ws, run, entries[index:], f"not run: the collection run stopped ({reason})", runtime)
            break
        plan_id = approved.plans.get(entry.job) if approved is not None else None
        try:
            if approved is not None and plan_id is None:
                raise StateConflictError(f"request {approved.request_id} holds no plan of job {entry.job!r}: it was not run")
            # A job run refused with TransientError recorded nothing: it is started again.
            child = _keep_trying(
                runtime, f"run {run.id}: starting job {entry.job!r}",
                partial(
                    jobs.run_job, ws, entry.job, trigger=run.trigger, parent_run_id=run.id, should_stop=stop,
                    plan_id=plan_id, allows=approved.allows if approved is not None else None,
                ),
            )
        except IdsyncError as exc:
            # The job could not even start (removed since, or its plan is unusable).
            _keep_trying(
                runtime, f"run {run.id}: recording job {entry.job!r} failed",
                partial(_add_failed_child, ws, run, entry.job, exc.message, runtime),
            )
            child_state, child_error = RunState.FAILED, exc.message
        else:
            counts.add(child.counts)
            child_state, child_error = child.state, child.error
            _keep_trying(runtime, f"run {run.id}: recording its counts", partial(_set_counts, ws, run.id, counts))
        any_errors = any_errors or child_state is RunState.COMPLETED_WITH_ERRORS
        if child_state is RunState.HELD:
            # It changed nothing and waits for a decision; the jobs after it still run.
            held.append(f"job {entry.job!r} held: {(child_error or 'waits for a decision').removeprefix('held: ')}")
        if child_state is RunState.TERMINATED:
            ended_by = child_error or "terminated"
            _skip_rest(ws, run, entries[index + 1 :], f"not run: job {entry.job!r} was terminated", runtime)
            break
        if child_state is RunState.FAILED:
            failures.append(f"job {entry.job!r} failed: {child_error}")
            if entry.on_failure == "abort":
                rest = entries[index + 1 :]
                _skip_rest(ws, run, rest, f"not run: job {entry.job!r} failed and its on_failure is abort", runtime)
                if rest:
                    failures.append(f"{len(rest)} job(s) after it skipped (on_failure: abort)")
                break
    if ended_by is not None:
        return RunState.TERMINATED, counts, ended_by
    # The linked smart group update jobs follow what the jobs wrote, each a child run of this one.
    for update in smartgroup_runs.run_linked(ws, run, collection.smart_group_jobs):
        any_errors = any_errors or update.run.state is RunState.COMPLETED_WITH_ERRORS
        if update.run.state is RunState.FAILED:
            failures.append(f"smart group update job {update.run.job_name!r} failed: {update.run.error}")
        if update.run.state is RunState.HELD:
            # Groups stopped at a membership limit were left as they are and wait for a decision.
            cause = (update.run.error or "waits for a decision").removeprefix("held: ")
            held.append(f"smart group update job {update.run.job_name!r} held: {cause}")
    if failures:
        return RunState.FAILED, counts, "; ".join(failures + held)
    if held:
        # The jobs not held ran; the held ones wrote nothing and wait for a decision.
        return RunState.HELD, counts, "; ".join(held)
    return (RunState.COMPLETED_WITH_ERRORS if any_errors else RunState.SUCCEEDED), counts, None


def _skip_rest(ws: Workspace, run: RunRow, entries: list[CollectionJob], reason: str, runtime: Runtime) -> None:
    if not entries:
        return

    def record() -> None:
        with ws.db.session() as session:
            repo = CollectionRunRepository(session, clock=runtime.clock)
            for entry in entries:
                repo.add_child(run, job_name=entry.job, job_id=None, state=RunState.SKIPPED, reason=reason)

    _keep_trying(runtime, f"run {run.id}: recording the jobs not run", record)


def _add_failed_child(ws: Workspace, run: RunRow, job: str, reason: str, runtime: Runtime) -> None:
    with ws.db.session() as session:
        CollectionRunRepository(session, clock=runtime.clock).add_child(
            run, job_name=job, job_id=None, state=RunState.FAILED, reason=reason
        )


def _set_counts(ws: Workspace, run_id: int, counts: Counts) -> None:
    with ws.db.session() as session:
        CollectionRunRepository(session).set_counts(run_id, counts)


# ---------------------------------------------------------------- foreground and control


def run_collection(
    ws: Workspace,
    name: str,
    runtime: Runtime | None = None,
    *,
    trigger: str = "manual",
    wait_poll: float = 0.5,
) -> CollectionReport:
    """Run collection *name* in this process and wait for the result. A run
    that must queue waits for its turn here (or is started by a scheduler)."""
    require_role(ws, Role.OPERATOR, "run collections")
    runtime = runtime or Runtime()
    started = start_run(ws, name, runtime, trigger=trigger)
    if started.state is RunState.RUNNING:
        assert started.fence is not None
        execute_run(ws, started.run_id, started.fence, runtime)
    elif started.state is RunState.QUEUED:
        wait_for(ws, started.run_id, runtime, poll=wait_poll)
    return report(ws, started.run_id)


def wait_for(ws: Workspace, run_id: int, runtime: Runtime, *, poll: float = 0.5) -> RunRow:
    """Wait until run *run_id* has finished (or awaits approval), executing it
    here if it is queued and its turn comes while this process is the first
    to claim it."""
    while True:
        with ws.db.session() as session:
            run = RunRepository(session).require(run_id)
        if run.state.finished or run.state is RunState.AWAITING_APPROVAL:
            return run  # awaiting approval: it runs once approved, in the approver's process
        if run.state is RunState.QUEUED:
            fence = scheduling_repo.claim(
                ws.db, run_id, expected=RunState.QUEUED, node=runtime.node, lease=runtime.lease, clock=runtime.clock
            )
            if fence is not None:
                return execute_run(ws, run_id, fence, runtime)
        if runtime.shutdown.wait(poll):
            with ws.db.session() as session:
                return RunRepository(session).require(run_id)


def terminate_run(ws: Workspace, run_id: int, reason: str | None = None) -> RunRow:
    """Stop a run: a waiting one ends now; a running one stops at its next batch
    (the changes it made stay, and are listed in its job runs' plans)."""
    require_role(ws, Role.OPERATOR, "terminate runs")
    why = f"terminated by {ws.actor}" + (f": {reason}" if reason else "")
    with ws.db.session() as session:
        repo = RunRepository(session)
        run = repo.require(run_id)
        if run.state in (RunState.PENDING, RunState.QUEUED):
            repo.log(run_id, "warning", why)
            repo.finish(run_id, RunState.TERMINATED, run.counts, why)
        elif run.state is RunState.RUNNING:
            repo.request_stop(run_id, why)
            repo.log(run_id, "warning", f"stop requested: {why}")
        else:
            raise StateConflictError(
                f"run {run_id} is {run.state.value}: only a pending, queued or running run can be terminated"
            )
        return repo.require(run_id)


def report(ws: Workspace, run_id: int) -> CollectionReport:
    """A run with its job runs (none for a job run)."""
    with ws.db.session() as session:
        repo = RunRepository(session)
        return CollectionReport(repo.require(run_id), repo.children(run_id))


def record_missed(
    session: Session, ws: Workspace, collection_id: int | None, name: str, occurrence_id: int, reason: str,
    runtime: Runtime,
) -> int:
    """A visible trace of scheduled runs that did not happen, in the caller's
    transaction (the one recording the occurrences): a run in state *missed*."""
    repo = CollectionRunRepository(session, clock=runtime.clock)
    run_id = repo.create(
        collection_id=collection_id,
        collection_name=name,
        trigger="schedule",
        requested_by="scheduler",
        occurrence_id=occurrence_id,
    )
    repo.record_ended(run_id, RunState.MISSED, reason)
    notifications.enqueue_run(ws, session, run_id, clock=runtime.clock)
    return run_id


def _log(ws: Workspace, run_id: int, level: str, message: str) -> None:
    with ws.db.session() as session:
        RunRepository(session).log(run_id, level, message)


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


def recent_runs(ws: Workspace, collection: str, *, limit: int = 10) -> list[RunRow]:
    """The newest runs of *collection*, newest first (also after it was removed)."""
    with ws.db.session() as session:
        return CollectionRunRepository(session).recent(collection, limit=limit)


def last_runs(ws: Workspace, collections_: list[str]) -> dict[str, RunRow | None]:
    """The last run of each collection named, or None where it never ran."""
    with ws.db.session() as session:
        repo = CollectionRunRepository(session)
        return {name: repo.last(name) for name in collections_}
