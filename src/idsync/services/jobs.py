"""Sync job use cases: create, preview, run, apply a stored plan."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from idsync import settings
from idsync.connectors.base import Directory, Source
from idsync.domain.definitions import JobDefinition
from idsync.domain.results import Counts, ErrorItem, RunState
from idsync.engine import runner
from idsync.engine.context import RunContext
from idsync.engine.limits import hold_reason
from idsync.engine.planner import Planner
from idsync.errors import ConfigError, IdsyncError, RunTerminated
from idsync.services import connections, definitions, history, job_features, validation
from idsync.services.recording import DatabaseRecorder, ProgressCallback
from idsync.services.workspace import Workspace
from idsync.store.leases import LEASE_LOST, Heartbeat, default_node
from idsync.store.plans_repo import PlanRepository, PlanRow
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.store.scheduling_repo import SchedulingRepository, claim


def save_job(ws: Workspace, job: JobDefinition) -> str:
    """Validate and save a job; returns "created", "updated" or "unchanged"."""
    validation.check_offline(ws, job)
    return definitions.save(ws, "job", job)


def load_job(ws: Workspace, name: str) -> tuple[int, JobDefinition]:
    loaded = definitions.load(ws, "job", name)
    return loaded.id, loaded.definition


@dataclass
class PreviewResult:
    plan: PlanRow
    errors: list[ErrorItem] = field(default_factory=list)


def _final_state(counts: Counts) -> RunState:
    return RunState.COMPLETED_WITH_ERRORS if counts.errors or counts.conflicts else RunState.SUCCEEDED


def _prepare(ws: Workspace, job: JobDefinition, directory: Directory, source: Source) -> None:
    """The checks that need connections, done before anything is read or written."""
    validation.check_offline(ws, job)
    validation.check_source_fields(job, source)
    validation.check_schema(job, directory.schema())


def preview_job(ws: Workspace, name: str, on_progress: ProgressCallback | None = None) -> PreviewResult:
    """Compute what a run of job *name* would do and store it as a plan; change nothing."""
    job_id, job = load_job(ws, name)
    with ws.db.session() as session:
        plan_id = PlanRepository(session).create(job_name=job.name, job_id=job_id, created_by=ws.actor)
    recorder = DatabaseRecorder(ws, plan_id, on_progress=on_progress)
    try:
        with connections.directory(ws, job.destination.store) as directory, connections.job_source(
            ws, job
        ) as source:
            _prepare(ws, job, directory, source)
            update = job_features.update_filter(ws, job, keep=False)
            planner = Planner(job, source, directory, RunContext.create(job.name), update)
            counts = runner.preview(planner, recorder, settings.get_int("batch_size"))
    except IdsyncError as exc:
        with ws.db.session() as session:
            PlanRepository(session).finish(plan_id, "failed", Counts(), exc.message)
        raise
    with ws.db.session() as session:
        plans = PlanRepository(session)
        plans.finish(plan_id, "ready", counts)
        plan = plans.require(plan_id)
    return PreviewResult(plan, recorder.error_items)


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
) -> RunRow:
    """Run job *name* (or apply its stored plan *plan_id*); the run is recorded
    whatever happens, and a fatal error ends it as failed with the cause.

    A job with safety limits is planned in full first: over a limit, the run
    ends ``held`` with the reason, writes nothing, and its plan stays ready
    for ``plan_id`` to release it. *full* makes a changed-only job look at
    every record this once.

    A job run of a collection run names it as *parent_run_id*. Between batches
    the run stops (state ``terminated``, what was applied stays) when someone
    asked it to (``idsync run terminate``) or when *should_stop* gives a reason.

    A run started on its own (no parent) holds a lease that a heartbeat renews
    (``IDSYNC_RUN_LEASE_SECONDS``), as a collection run under the scheduler
    does: if this process dies, a scheduler marks the run failed ("node
    lost") once the lease runs out, rather than it staying ``running``.
    """
    job_id, job = load_job(ws, name)
    with ws.db.session() as session:
        if plan_id is not None:
            stored = PlanRepository(session).require(plan_id)
            if stored.job_name != job.name:
                raise ConfigError(f"plan {plan_id} belongs to job {stored.job_name!r}, not {job.name!r}")
            if stored.state != "ready":
                raise ConfigError(f"plan {plan_id} is {stored.state}; only a ready plan can be applied")
            run_plan = plan_id
        else:
            run_plan = PlanRepository(session).create(job_name=job.name, job_id=job_id, created_by=ws.actor)
        runs = RunRepository(session)
        parent = runs.require(parent_run_id) if parent_run_id is not None else None
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
        if parent is not None:
            runs.start(run_id)  # under its collection run's lease
        runs.log(run_id, "info", f"run of job {job.name!r} started by {ws.actor}")
    lease = timedelta(seconds=settings.get_int("run_lease_seconds")) if parent is None else None
    fence = claim(ws.db, run_id, expected=RunState.PENDING, node=default_node(), lease=lease) if lease else None
    heartbeat = Heartbeat(ws.db, run_id, fence, lease) if lease and fence is not None else None
    recorder = DatabaseRecorder(ws, run_plan, run_id, on_progress)
    counts = Counts()
    error: str | None = None
    held: str | None = None
    with heartbeat or nullcontext():
        try:
            with connections.directory(ws, job.destination.store) as directory, connections.job_source(
                ws, job
            ) as source:
                _prepare(ws, job, directory, source)
                update = job_features.update_filter(ws, job, keep=True, full=full) if plan_id is None else None
                planner = Planner(job, source, directory, RunContext.create(job.name), update)
                batch = settings.get_int("batch_size")
                stop = _stop_check(ws, run_id, _or_lease_lost(should_stop, heartbeat))
                steps = job_features.apply_steps(ws, job, run_id, update)
                if plan_id is not None:
                    current = runner.read_current(planner)
                    counts = runner.apply_plan(
                        history.plan_changes(ws, plan_id), directory, current, recorder, batch, stop, steps
                    )
                elif job.limits is not None and job.limits.any:
                    counts, held = runner.run_checked(
                        planner, directory, recorder, lambda: history.plan_changes(ws, run_plan),
                        lambda p: hold_reason(job.limits, p.plan_size()), batch, stop, steps,
                    )
                else:
                    counts = runner.run(planner, directory, recorder, batch, stop, steps)
        except RunTerminated as exc:
            # Stopped on request: the batches applied before stay applied, and counted.
            state, error, counts = RunState.TERMINATED, exc.message, recorder.last_counts
        except IdsyncError as exc:
            # What was done before the failure stays done, and counted.
            state, error, counts = RunState.FAILED, exc.message, recorder.last_counts
        else:
            state, error = (RunState.HELD, held) if held else (_final_state(counts), None)
    _finish(ws, run_id, state, counts, error, fence)
    with ws.db.session() as session:
        plans = PlanRepository(session)
        if state is RunState.HELD:
            # Nothing was written: the plan waits, ready, for someone to release it.
            plans.finish(run_plan, "ready", planner.counts)
            RunRepository(session).log(
                run_id, "warning", f"plan {run_plan} is ready: `idsync job run {job.name} --plan {run_plan}` applies it"
            )
            return RunRepository(session).require(run_id)
        plans.mark_applied(run_plan, run_id)
        if plan_id is None:
            plans.finish(run_plan, "failed" if state is RunState.FAILED else "applied", counts, error)
        return RunRepository(session).require(run_id)


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
        with ws.db.session() as session:
            return RunRepository(session).stop_requested(run_id)

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


def _finish(
    ws: Workspace, run_id: int, state: RunState, counts: Counts, error: str | None, fence: int | None = None
) -> None:
    """Record how the run ended. With a *fence* (a leased run), only while this
    process still holds the run: one already marked failed as "node lost"
    keeps that state, and the log says what this process saw."""
    with ws.db.session() as session:
        runs = RunRepository(session)
        if error:
            runs.log(run_id, "error", error)
        summary = f"finished {state.value}: {counts.summary()}"
        if fence is None:
            runs.log(run_id, "info", summary)
            runs.finish(run_id, state, counts, error)
        elif SchedulingRepository(session).finish_fenced(run_id, fence, state, counts, error):
            runs.log(run_id, "info", summary)
        else:
            runs.log(run_id, "warning", f"{summary} (not recorded: the run was no longer this process's)")
