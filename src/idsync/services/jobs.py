"""Sync job use cases: save, preview, run.

A run of a job goes through the same four steps in every mode:
:func:`_start` records the run and claims it (a job has one running run at
a time; a stored plan one applying run), :func:`_prepare` checks what needs
connections, the mode computes and applies its changes, and :func:`_finish`
records how the run ended and what becomes of its plan.

=======  ======================  ======  =========================  ==========================================
mode     when                    source  plan                       writes
=======  ======================  ======  =========================  ==========================================
plain    no plan given, the job  read    recorded as it is planned  each change as soon as it is planned
         has no safety limits
checked  no plan given, the job  read    computed in full first,    nothing when a limit is exceeded (the run
         has safety limits               then claimed by the run    ends held; its plan waits, ready); else
                                                                    the plan, with its preconditions
stored   a plan is given         unread  the stored plan, claimed   the plan's changes, with their
                                         (ready → applying)         preconditions; the plan's record errors
                                                                    are the run's too
=======  ======================  ======  =========================  ==========================================

A complete plan whose run fails or is stopped is ready again: applying it
again skips what the failed run wrote (found in place by the preconditions)
and writes the rest. A run that fails for any reason, an unexpected one
included, is recorded as failed with its cause, never left running.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from idsync import logcontext, settings
from idsync.connectors.base import Directory, Source
from idsync.domain.changes import Change
from idsync.domain.definitions import JobDefinition
from idsync.domain.results import Counts, ErrorItem, RunState
from idsync.domain.roles import Role
from idsync.engine import runner
from idsync.engine.context import RunContext
from idsync.engine.limits import hold_reason
from idsync.engine.planner import Planner
from idsync.errors import (
    ConfigError,
    IdsyncError,
    NotFoundError,
    RunTerminated,
    StateConflictError,
    TransientError,
)
from idsync.services import connections, definitions, history, job_features, releases, validation
from idsync.services.authz import require as require_role
from idsync.services.reaping import reap
from idsync.services.recording import DatabaseRecorder, ProgressCallback
from idsync.services.workspace import Workspace
from idsync.store import audit
from idsync.store.leases import LEASE_LOST, Heartbeat, PreviewHeartbeat, default_node
from idsync.store.plans_repo import PlanRepository, PlanRow, stopped_note
from idsync.store.retry import retry_transient
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.store.scheduling_repo import SchedulingRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedJob:
    """What saving a job did, and why it was not checked against its source and store (if so)."""

    outcome: str
    warning: str | None = None


def save_job(ws: Workspace, job: JobDefinition, *, offline: bool = False) -> str:
    """Validate and save a job; returns "created", "updated" or "unchanged"."""
    require_role(ws, Role.OPERATOR, "save jobs")
    return save_checked(ws, job, offline=offline).outcome


def save_checked(
    ws: Workspace, job: JobDefinition, *, offline: bool = False, based_on: Collection[str] | None = None,
) -> SavedJob:
    """Validate and save a job. Unless *offline*, its mappings are checked
    against the fields of its source and the schema of its store, when those
    can be read (see :func:`validation.check_connected`); a job that fails is
    refused, one that could not be checked is saved with a warning."""
    warning = check_job(ws, job, offline=offline)
    if warning:
        log.warning("%s", warning)
    return SavedJob(definitions.save(ws, "job", job, based_on=based_on), warning)


def check_job(ws: Workspace, job: JobDefinition, *, offline: bool = False) -> str | None:
    """The checks a job passes before it is saved: ConfigError when it is
    wrong; a warning when it could not be checked against its source and
    store (they cannot be read); None when it was, or *offline*."""
    validation.check_offline(ws, job)
    return None if offline else validation.check_connected(ws, job)


def load_job(ws: Workspace, name: str) -> tuple[int, JobDefinition]:
    loaded = definitions.load(ws, "job", name)
    return loaded.id, loaded.definition


@dataclass
class PreviewResult:
    plan: PlanRow
    errors: list[ErrorItem] = field(default_factory=list)


class _Recorder(DatabaseRecorder):
    """Records a run or a preview; while ``planning``, the record errors found
    are kept with the plan too, so a stored plan shows them and the run
    applying it reports them."""

    planning = True

    def errors(self, items: Sequence[ErrorItem]) -> None:
        super().errors(items)
        if self.planning and items:

            def write() -> None:
                with self.ws.db.session() as session:
                    PlanRepository(session).add_errors(self.plan_id, items)

            retry_transient(write, what=f"{self.what}: recording record errors with its plan")


def _final_state(counts: Counts) -> RunState:
    return RunState.COMPLETED_WITH_ERRORS if counts.errors or counts.conflicts else RunState.SUCCEEDED


def _prepare(ws: Workspace, job: JobDefinition, directory: Directory, source: Source) -> None:
    """The checks that need connections, done before anything is read or written."""
    validation.check_offline(ws, job)
    validation.check_source_fields(job, source)
    validation.check_schema(job, directory.schema())


def _planner(ws: Workspace, job: JobDefinition, directory: Directory, source: Source, *, full: bool) -> Planner:
    update = job_features.update_filter(ws, job, keep=True, full=full)
    return Planner(job, source, directory, RunContext.create(job.name, readable=job.environment), update)


def preview_job(
    ws: Workspace,
    name: str,
    on_progress: ProgressCallback | None = None,
    *,
    assumed_containers: Collection[str] = (),
    on_started: Callable[[int], None] | None = None,
) -> PreviewResult:
    """Compute what a run of job *name* would do and store it as a plan, with
    the record errors found; change nothing. *assumed_containers* are DNs of
    entries taken as existing though they do not yet (earlier jobs of a
    collection create them): searching inside them finds nothing.

    The plan is computed under a lease (``IDSYNC_RUN_LEASE_SECONDS``) that a
    heartbeat renews: if this process dies, the plan does not stay
    *computing*; it is marked failed once the lease runs out.

    *on_started* is called with the plan's id once it is recorded, before
    it is computed: a front end that computes it in the background answers
    with the plan to follow.
    """
    require_role(ws, Role.OPERATOR, "preview jobs")
    job_id, job = load_job(ws, name)
    reap(ws)
    lease = timedelta(seconds=settings.get_int("run_lease_seconds"))
    with ws.db.session() as session:
        plan_id = PlanRepository(session).create(
            job_name=job.name, job_id=job_id, created_by=ws.actor, node=default_node(), lease=lease
        )
    if on_started is not None:
        on_started(plan_id)
    recorder = _Recorder(ws, plan_id, on_progress=on_progress)
    try:
        with PreviewHeartbeat(ws.db, plan_id, lease), connections.job_destination(
            ws, job, assumed_containers
        ) as directory, connections.job_source(ws, job) as source:
            _prepare(ws, job, directory, source)
            update = job_features.update_filter(ws, job, keep=False)
            planner = Planner(job, source, directory, RunContext.create(job.name, readable=job.environment), update)
            counts = runner.preview(planner, recorder, settings.get_int("batch_size"))
    except BaseException as exc:
        with ws.db.session() as session:
            PlanRepository(session).finish_preview(plan_id, "failed", Counts(), _cause(exc))
        raise
    with ws.db.session() as session:
        plans = PlanRepository(session)
        if not plans.finish_preview(plan_id, "ready", counts):
            raise StateConflictError(
                f"plan {plan_id} was marked failed while it was computed: this process was taken for dead "
                "(its lease ran out)",
                hint="preview the job again; a longer run lease lets a slow or paused preview keep its plan",
            )
        plan = plans.require(plan_id)
    return PreviewResult(plan, recorder.error_items)


# ---------------------------------------------------------------- running


@dataclass
class _Run:
    """A started run: what it runs, in which mode, and the lease it holds."""

    id: int
    job: JobDefinition
    plan_id: int
    mode: str  # plain, checked or stored (see the module docstring)
    fence: int | None
    lease: timedelta | None
    plan_complete: bool = False  # the plan holds every change: it can be applied again
    allows: Callable[[Change], bool] | None = None  # of a stored plan, only the changes approved


@dataclass
class _Result:
    """How a run ended; *planned*: a held run's plan counts."""

    state: RunState
    counts: Counts
    error: str | None = None
    planned: Counts | None = None


def run_job(
    ws: Workspace,
    name: str,
    *,
    plan_id: int | None = None,
    on_progress: ProgressCallback | None = None,
    trigger: str = "manual",
    parent_run_id: int | None = None,
    should_stop: runner.StopCheck | None = None,
    full: bool = False,
    allows: Callable[[Change], bool] | None = None,
    request_id: int | None = None,
    on_started: Callable[[int], None] | None = None,
) -> RunRow:
    """Run job *name*, or apply its stored plan *plan_id* (modes: see the module
    docstring); the finished run.

    A job whose store's workflow requires approval for manual runs (or, for a
    held run's plan, for held runs) is not run on its own: it runs within a
    collection, whose run raises the request, or as the execution of
    approved request *request_id*. Otherwise running the job alone would
    bypass the approval.

    A fatal error (an IdsyncError) ends the run failed with its cause, and
    the run is returned; any other exception is recorded the same way, then
    raised. *full* makes a changed-only job look at every record this once.

    Refused with StateConflictError, before anything is recorded, when the
    job has a running run already (one whose lease ran out is marked failed
    first, so a killed process does not block the job for ever), or when
    the plan is not ready.

    A job run of a collection run names it as *parent_run_id* and runs under
    its lease. A run started on its own holds a lease that a heartbeat renews
    (``IDSYNC_RUN_LEASE_SECONDS``): if this process dies, the run is marked
    failed ("node lost") once the lease runs out. Between batches the run
    stops (state ``terminated``, what was applied stays) when someone asked
    it to, or when *should_stop* gives a reason.

    *allows* (with a stored plan: a request's partial approval) lets only
    some of the plan's changes through; the others are counted
    ``not_approved`` and the first of them named in the run's log.

    *on_started* is called with the run's id once it is recorded and
    claimed, before anything is read or written.
    """
    require_role(ws, Role.OPERATOR, "run jobs")
    job_id, job = load_job(ws, name)
    if parent_run_id is None and request_id is None:
        _refuse_bypass(ws, job, plan_id)
    if allows is not None and plan_id is None:
        raise ValueError("only a stored plan's changes can be filtered")
    run = _start(ws, job_id, job, plan_id, trigger, parent_run_id)
    with logcontext.bound(run_id=run.id, job=name):
        return _execute(ws, run, allows, on_started, on_progress, should_stop, full)


def _execute(
    ws: Workspace,
    run: _Run,
    allows: Callable[[Change], bool] | None,
    on_started: Callable[[int], None] | None,
    on_progress: ProgressCallback | None,
    should_stop: runner.StopCheck | None,
    full: bool,
) -> RunRow:
    run.allows = allows
    if on_started is not None:
        on_started(run.id)
    recorder = _Recorder(ws, run.plan_id, run.id, on_progress)
    heartbeat = Heartbeat(ws.db, run.id, run.fence, run.lease) if run.lease and run.fence is not None else None
    try:
        with heartbeat or nullcontext():
            stop = _stop_check(ws, run.id, _or_lease_lost(should_stop, heartbeat))
            result = _MODES[run.mode](ws, run, recorder, stop, full)
    except RunTerminated as exc:
        # Stopped on request: the batches applied before stay applied, and counted.
        result = _Result(RunState.TERMINATED, recorder.last_counts, exc.message)
    except IdsyncError as exc:
        # What was done before the failure stays done, and counted.
        result = _Result(RunState.FAILED, recorder.last_counts, exc.message)
    except BaseException as exc:
        _finish_quietly(ws, run, _Result(RunState.FAILED, recorder.last_counts, _cause(exc)))
        raise
    return _finish(ws, run, result)


def _refuse_bypass(ws: Workspace, job: JobDefinition, plan_id: int | None) -> None:
    """StateConflictError when running *job* on its own would bypass its store's workflow."""
    try:
        store = definitions.load(ws, "store", job.destination.store).definition
    except NotFoundError:
        return  # the run says so itself
    workflow = getattr(store, "workflow", None)
    if workflow is None:
        return
    held = False
    if plan_id is not None:
        with ws.db.session() as session:
            held = RunRepository(session).held_for_plan(plan_id) is not None
    if held and workflow.held:
        raise StateConflictError(
            f"plan {plan_id} of job {job.name!r} was held by a safety limit, and identity store {store.name!r} "
            "requires approval to release held runs",
            field="plan", hint="approve the request raised for the held run",
        )
    if workflow.manual:
        raise StateConflictError(
            f"identity store {store.name!r} requires approval for manual runs: job {job.name!r} cannot run on its own",
            field="job", hint="run a collection holding the job: its run raises a request for the approvers",
        )


def _start(
    ws: Workspace,
    job_id: int,
    job: JobDefinition,
    plan_id: int | None,
    trigger: str,
    parent_run_id: int | None,
) -> _Run:
    """Record the run and claim it (and the stored plan) in one transaction:
    a refusal leaves no trace."""
    reap(ws)
    lease = timedelta(seconds=settings.get_int("run_lease_seconds")) if parent_run_id is None else None
    mode = "stored" if plan_id is not None else "checked" if job.limits is not None and job.limits.any else "plain"
    try:
        with ws.db.session() as session:
            runs, plans = RunRepository(session), PlanRepository(session)
            parent = runs.require(parent_run_id) if parent_run_id is not None else None
            holder = runs.running_job_run(job_id)
            if holder is not None:
                raise _busy(job.name, holder)
            if plan_id is not None:
                stored = plans.require(plan_id)
                if stored.job_name != job.name:
                    raise ConfigError(f"plan {plan_id} belongs to job {stored.job_name!r}, not {job.name!r}")
                run_plan = plan_id
            else:
                run_plan = plans.create(job_name=job.name, job_id=job_id, created_by=ws.actor)
            run_id = runs.create(
                job_name=job.name,
                job_id=job_id,
                plan_id=run_plan,
                trigger=trigger,
                requested_by=ws.actor,
                parent_run_id=parent_run_id,
                collection_id=parent.collection_id if parent else None,
                collection_name=parent.collection_name if parent else None,
                occurrence_id=parent.occurrence_id if parent else None,
            )
            audit.record(session, actor=ws.actor, action="run.start", object_kind="job", object_name=job.name, detail={"run": run_id, "trigger": trigger, "plan": plan_id})
            if plan_id is not None:
                plans.claim(plan_id, run_id)
            fence = runs.start(run_id, node=default_node() if lease else None, lease=lease)
            what = f"applying plan {plan_id}" if plan_id is not None else "started"
            runs.log(run_id, "info", f"run of job {job.name!r} {what} by {ws.actor}")
    except StateConflictError as exc:
        if exc.field != "job":
            raise
        # Another run of the job started between the check and the claim.
        with ws.db.session() as session:
            holder = RunRepository(session).running_job_run(job_id)
        raise (_busy(job.name, holder) if holder is not None else exc) from None
    return _Run(run_id, job, run_plan, mode, fence if lease else None, lease, plan_complete=mode == "stored")


def _busy(job: str, holder: int) -> StateConflictError:
    return StateConflictError(
        f"job {job!r} is already running (run {holder})",
        field="job",
        hint="wait for that run to finish, or terminate it",
    )


Mode = Callable[[Workspace, _Run, _Recorder, runner.StopCheck, bool], _Result]


def _run_plain(ws: Workspace, run: _Run, recorder: _Recorder, stop: runner.StopCheck, full: bool) -> _Result:
    """Plan and write in one stream."""
    job = run.job
    recorder.planning = False  # the run's errors are its record; its plan is never applied again
    with connections.job_destination(ws, job) as directory, connections.job_source(ws, job) as source:
        _prepare(ws, job, directory, source)
        planner = _planner(ws, job, directory, source, full=full)
        steps = job_features.apply_steps(ws, job, run.id, planner.update)
        counts = runner.run(planner, directory, recorder, settings.get_int("batch_size"), stop, steps)
    return _Result(_final_state(counts), counts)


def _run_checked(ws: Workspace, run: _Run, recorder: _Recorder, stop: runner.StopCheck, full: bool) -> _Result:
    """Plan in full; hold over a safety limit, else claim the plan and apply it as a stored plan is."""
    job = run.job
    held: list[str] = []

    def check(planner: Planner) -> str | None:
        reason = hold_reason(job.limits, planner.plan_size())
        if reason is not None:
            held.append(reason)
            return reason
        with ws.db.session() as session:
            plans = PlanRepository(session)
            plans.finish(run.plan_id, "ready", planner.counts)
            plans.claim(run.plan_id, run.id)
        run.plan_complete = True
        recorder.planning = False  # from here on, errors are the run's only
        return None

    with connections.job_destination(ws, job) as directory, connections.job_source(ws, job) as source:
        _prepare(ws, job, directory, source)
        planner = _planner(ws, job, directory, source, full=full)
        steps = job_features.apply_steps(ws, job, run.id, planner.update)
        counts, reason = runner.run_checked(
            planner, directory, recorder, lambda: history.plan_changes(ws, run.plan_id), check,
            settings.get_int("batch_size"), stop, steps,
        )
    if reason is not None:
        return _Result(RunState.HELD, counts, reason, planned=planner.counts)
    return _Result(_final_state(counts), counts)


def _run_stored(ws: Workspace, run: _Run, recorder: _Recorder, stop: runner.StopCheck, full: bool) -> _Result:
    """Apply the stored plan against the destination only: the source is not opened."""
    job = run.job
    recorder.planning = False
    carried = Counts(errors=_carry_plan_errors(ws, run))
    recorder.last_counts = carried
    with connections.job_destination(ws, job) as directory:
        steps = job_features.apply_steps(ws, job, run.id, None)
        preconditions = runner.job_preconditions(job, directory, runner.read_scope(job, directory))
        left_out = _LeftOut(run.allows)
        changes = left_out.filter(history.plan_changes(ws, run.plan_id))
        batch = settings.get_int("batch_size")
        counts = runner.apply_plan(changes, directory, preconditions, recorder, batch, stop, steps, start=carried)
    if left_out.count:
        counts.not_approved = left_out.count
        shown = ", ".join(left_out.dns) + (f" and {left_out.count - len(left_out.dns)} more" if left_out.count > len(left_out.dns) else "")
        _log(ws, run.id, "warning", f"{left_out.count} change(s) of plan {run.plan_id} not approved, left undone: {shown}")
    if counts.unchanged:
        _log(ws, run.id, "info", f"{counts.unchanged} change(s) of plan {run.plan_id} were in place already: not written again")
    return _Result(_final_state(counts), counts)


class _LeftOut:
    """Lets through the changes *allows* approves, counting the others and
    keeping the DNs of the first of them for the log."""

    SHOWN = 20

    def __init__(self, allows: Callable[[Change], bool] | None) -> None:
        self.allows = allows
        self.count = 0
        self.dns: list[str] = []

    def filter(self, changes: Iterable[Change]) -> Iterator[Change]:
        for change in changes:
            if self.allows is None or self.allows(change):
                yield change
                continue
            self.count += 1
            if len(self.dns) < self.SHOWN:
                self.dns.append(f"{change.op.value} {change.dn}")


_MODES: dict[str, Mode] = {"plain": _run_plain, "checked": _run_checked, "stored": _run_stored}


def _carry_plan_errors(ws: Workspace, run: _Run, page: int = 1000) -> int:
    """Copy the plan's record errors into the run's; how many there were."""
    after, total = 0, 0
    while True:
        with ws.db.session() as session:
            found = PlanRepository(session).errors(run.plan_id, after=after, limit=page)
            RunRepository(session).add_errors(run.id, [item for _, item in found])
        if not found:
            break
        after, total = found[-1][0], total + len(found)
    if total:
        _log(ws, run.id, "warning", f"plan {run.plan_id} was computed with {total} record error(s): reported with this run")
    return total


def _finish(ws: Workspace, run: _Run, result: _Result) -> RunRow:
    """Record how the run ended and what becomes of its plan, in one transaction,
    tried again while the database is away for a moment (the run's changes
    are made: how it ended must be recorded, not lost to a locked database).

    With a fence (a run with a lease), the result is written only while this
    process still holds the run: one already marked failed as "node lost"
    keeps that state, and the log says what this process saw.
    """
    return retry_transient(lambda: _record_end(ws, run, result), what=f"run {run.id}: recording its result")


def _record_end(ws: Workspace, run: _Run, result: _Result) -> RunRow:
    state, counts, error = result.state, result.counts, result.error
    with ws.db.session() as session:
        runs, plans = RunRepository(session), PlanRepository(session)
        if error:
            runs.log(run.id, "error" if state is RunState.FAILED else "warning", error)
        summary = f"finished {state.value}: {counts.summary()}"
        ended = runs.require(run.id).state if run.fence is None else None
        if ended is not None and ended.finished:
            # A job run of a collection run whose node was taken for lost: the
            # reaper ended it; what this late process saw does not overwrite that.
            runs.log(run.id, "warning", f"{summary} (not recorded: the run had been marked {ended.value} meanwhile)")
        elif run.fence is None:
            runs.log(run.id, "info", summary)
            runs.finish(run.id, state, counts, error)
        elif SchedulingRepository(session).finish_fenced(run.id, run.fence, state, counts, error):
            runs.log(run.id, "info", summary)
        else:
            runs.log(run.id, "warning", f"{summary} (not recorded: the run was no longer this process's)")
        if state is RunState.HELD:
            # Nothing was written: the plan waits, ready, for someone to apply it.
            plans.finish(run.plan_id, "ready", result.planned or counts)
            runs.log(run.id, "warning", f"plan {run.plan_id} is ready: apply it to release the run")
        elif run.mode == "plain":
            plans.mark_applied(run.plan_id, run.id)
            plans.finish(run.plan_id, "failed" if state is RunState.FAILED else "applied", counts, error)
        elif not run.plan_complete:
            plans.finish(run.plan_id, "failed", counts, error)
        elif state in (RunState.SUCCEEDED, RunState.COMPLETED_WITH_ERRORS):
            plans.mark_applied(run.plan_id, run.id)
            if run.mode == "stored":
                # The plan of a held job of a collection run: the collection run learns of it.
                releases.settle(ws, session, run.plan_id, runs.require(run.id))
        elif plans.release(run.plan_id, run.id, stopped_note(run.id, state.value, error)):
            runs.log(run.id, "info", f"plan {run.plan_id} is ready again: applying it again writes only what is not in place")
        return runs.require(run.id)


def _finish_quietly(ws: Workspace, run: _Run, result: _Result) -> None:
    """:func:`_finish` for a run ended by an unexpected exception: a failure
    to record it is logged, never raised over that exception."""
    try:
        _finish(ws, run, result)
    except Exception:
        log.exception("run %s: its failure could not be recorded (its lease will run out)", run.id)


def _cause(exc: BaseException) -> str:
    """One line naming an exception idsync did not expect, for the run's record."""
    if isinstance(exc, IdsyncError):
        return exc.message
    text = str(exc).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    return f"unexpected error {type(exc).__name__}{detail}"


def _log(ws: Workspace, run_id: int, level: str, message: str) -> None:
    with ws.db.session() as session:
        RunRepository(session).log(run_id, level, message)


STOP_POLL_SECONDS = 1.0
"""How often a running job looks in the database for a request to stop."""


def _stop_check(ws: Workspace, run_id: int, extra: runner.StopCheck | None) -> runner.StopCheck:
    """Between batches: *extra*'s reason, else a stop requested for this run
    (read from the database at most once per STOP_POLL_SECONDS)."""
    last_poll = [float("-inf")]

    def check() -> str | None:
        reason = extra() if extra is not None else None
        if reason is not None:
            return reason
        now = time.monotonic()
        if now - last_poll[0] < STOP_POLL_SECONDS:
            return None
        last_poll[0] = now
        try:
            with ws.db.session() as session:
                return RunRepository(session).stop_requested(run_id)
        except TransientError:
            return None  # the database is away for a moment: asked again at the next poll

    return check


def _or_lease_lost(extra: runner.StopCheck | None, heartbeat: Heartbeat | None) -> runner.StopCheck | None:
    """*extra*, and the reason to stop once *heartbeat* found the run taken from this process."""
    if heartbeat is None:
        return extra

    def check() -> str | None:
        if heartbeat.lost.is_set():
            return LEASE_LOST
        return extra() if extra is not None else None

    return check
