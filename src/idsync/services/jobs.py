"""Sync job use cases: create, preview, run, apply a stored plan."""

from __future__ import annotations

from dataclasses import dataclass, field

from idsync import settings
from idsync.connectors.base import Directory, Source
from idsync.domain.definitions import JobDefinition
from idsync.domain.results import Counts, ErrorItem, RunState
from idsync.engine import runner
from idsync.engine.context import RunContext
from idsync.engine.planner import Planner
from idsync.errors import ConfigError, IdsyncError
from idsync.services import connections, definitions, history, validation
from idsync.services.recording import DatabaseRecorder, ProgressCallback
from idsync.services.workspace import Workspace
from idsync.store.plans_repo import PlanRepository, PlanRow
from idsync.store.runs_repo import RunRepository, RunRow


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
        with connections.directory(ws, job.destination.store) as directory, connections.source(
            ws, job.source.data_source
        ) as source:
            _prepare(ws, job, directory, source)
            planner = Planner(job, source, directory, RunContext.create(job.name))
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
) -> RunRow:
    """Run job *name* (or apply its stored plan *plan_id*); the run is recorded
    whatever happens, and a fatal error ends it as failed with the cause."""
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
        run_id = runs.create(
            job_name=job.name, job_id=job_id, plan_id=run_plan, trigger=trigger, requested_by=ws.actor
        )
        runs.start(run_id)
        runs.log(run_id, "info", f"run of job {job.name!r} started by {ws.actor}")
    recorder = DatabaseRecorder(ws, run_plan, run_id, on_progress)
    counts = Counts()
    error: str | None = None
    try:
        with connections.directory(ws, job.destination.store) as directory, connections.source(
            ws, job.source.data_source
        ) as source:
            _prepare(ws, job, directory, source)
            planner = Planner(job, source, directory, RunContext.create(job.name))
            batch = settings.get_int("batch_size")
            if plan_id is None:
                counts = runner.run(planner, directory, recorder, batch)
            else:
                current = runner.read_current(planner)
                counts = runner.apply_plan(history.plan_changes(ws, plan_id), directory, current, recorder, batch)
    except IdsyncError as exc:
        # What was done before the failure stays done, and counted.
        state, error, counts = RunState.FAILED, exc.message, recorder.last_counts
    else:
        state, error = _final_state(counts), None
    _finish(ws, run_id, state, counts, error)
    with ws.db.session() as session:
        plans = PlanRepository(session)
        plans.mark_applied(run_plan, run_id)
        if plan_id is None:
            plans.finish(run_plan, "failed" if state is RunState.FAILED else "applied", counts, error)
        return RunRepository(session).require(run_id)


def _finish(ws: Workspace, run_id: int, state: RunState, counts: Counts, error: str | None) -> None:
    with ws.db.session() as session:
        runs = RunRepository(session)
        if error:
            runs.log(run_id, "error", error)
        runs.log(
            run_id,
            "info",
            f"finished {state.value}: " + ", ".join(f"{k} {v}" for k, v in counts.to_dict().items() if v),
        )
        runs.finish(run_id, state, counts, error)
