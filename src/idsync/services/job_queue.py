"""The job queue's use cases: deferring runs to workers, workers taking them
over, and the queue's schema (see :mod:`idsync.store.job_queue` for how the
queue and the database's guarantees fit together)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from idsync.domain.results import RunState
from idsync.errors import ConfigError, IdsyncError, TransientError
from idsync.services.collection_runs import Runtime
from idsync.services.workspace import Workspace
from idsync.store import job_queue as store
from idsync.store.db import Database
from idsync.store.retry import retry_transient
from idsync.store.runs_repo import RunRepository
from idsync.store.scheduling_repo import SchedulingRepository

if TYPE_CHECKING:
    import procrastinate

QUEUE = store.QUEUE
SchemaChange = store.SchemaChange


def require_workers(ws: Workspace) -> None:
    """Refuse workers, or deferring to them, where they cannot work: anything
    but PostgreSQL, or a database whose queue was never installed."""
    store.require_postgres(ws.db)
    with ws.db.session() as session:
        installed = store.installed_version(session.connection())
    if installed is None:
        raise ConfigError(
            "the job queue is not installed in this database", hint="upgrade the database schema"
        )


def install_schema(db: Database) -> SchemaChange | None:
    """Install or upgrade the queue's schema on PostgreSQL; None on SQLite
    (one node only: nothing to install)."""
    if db.dialect != "postgresql":
        return None
    try:
        import procrastinate  # noqa: F401
    except ImportError:
        return None  # workers not installed (pip install idsync[workers]): nothing to install
    return store.install_schema(db)


class Queue:
    """The queue, opened for deferring runs from this process."""

    def __init__(self, ws: Workspace) -> None:
        self._app = store.make_app(ws.db, pool_size=2, sync=True)
        self._open = False

    def defer(self, run_id: int, fence: int, *, queue: str = QUEUE, request_id: int | None = None) -> int:
        """Defer claimed run *run_id* (at *fence*) to the workers; the job's id.
        With *request_id*, the worker applies that approved request's plans."""
        from procrastinate import exceptions

        try:
            if not self._open:
                self._app.open()
                self._open = True
            return store.defer_run(self._app, run_id, fence, queue=queue, request_id=request_id)
        except exceptions.AlreadyEnqueued:
            raise IdsyncError(f"run {run_id} waits in the job queue already") from None
        except exceptions.ProcrastinateException as exc:
            raise TransientError(f"the job queue cannot be reached: {_cause(exc)}") from exc

    def defer_many(self, runs: Sequence[tuple[int, int]], *, queue: str = QUEUE) -> list[int]:
        """Defer several claimed runs (run id, fence) in one round trip; their
        jobs' ids. When one of them waits in the queue already, none is
        deferred: IdsyncError, and the caller defers them one by one."""
        from procrastinate import exceptions

        try:
            if not self._open:
                self._app.open()
                self._open = True
            return store.defer_runs(self._app, runs, queue=queue)
        except exceptions.AlreadyEnqueued:
            raise IdsyncError("a run of the batch waits in the job queue already") from None
        except exceptions.ProcrastinateException as exc:
            raise TransientError(f"the job queue cannot be reached: {_cause(exc)}") from exc

    def close(self) -> None:
        if self._open:
            self._app.close()
            self._open = False


def open_queue(ws: Workspace) -> Queue:
    """The queue for deferring runs (checked usable now: PostgreSQL, schema installed)."""
    require_workers(ws)
    return Queue(ws)


Execute = Callable[[int, int, "int | None"], None]
"""What a worker does with a job: ``execute(run_id, fence, request_id)``
(*request_id*: the approved request whose plans the run applies, or None)."""


def worker_app(ws: Workspace, execute: Execute, *, pool_size: int) -> procrastinate.App:
    """A procrastinate app whose run task calls *execute(run_id, fence, request_id)*
    (jobs deferred for ordinary runs carry no request: None)."""
    app = store.make_app(ws.db, pool_size=pool_size)

    def execute_run(run_id: int, fence: int, request_id: int | None = None) -> None:
        execute(run_id, fence, request_id)

    app.task(name=store.TASK, queue=QUEUE)(execute_run)
    return app


def take_over(ws: Workspace, runtime: Runtime, run_id: int, fence: int) -> int | None:
    """Take deferred run *run_id* over for this worker: its new fence, or None
    when it is no longer held at *fence*. Tried again while the database is
    away for a moment, until this worker shuts down."""

    def attempt() -> int | None:
        with ws.db.session() as session:
            taken = SchedulingRepository(session, clock=runtime.clock).take_over(
                run_id, fence, runtime.node, runtime.lease
            )
            if taken is not None:
                RunRepository(session, clock=runtime.clock).log(run_id, "info", f"taken over by worker {runtime.node}")
            return taken

    return retry_transient(attempt, what=f"run {run_id}: taking it over", stop=runtime.shutdown)


def keep_waiting(ws: Workspace, runtime: Runtime) -> int:
    """Renew the leases of the runs whose job waits for a worker; how many."""
    with ws.db.session() as session:
        return store.keep_waiting_runs(session, runtime.lease, runtime.clock())


def release_node(ws: Workspace, runtime: Runtime, state: RunState) -> list[int]:
    """End the runs still marked running on this node (shutting down)."""
    with ws.db.session() as session:
        return SchedulingRepository(session, clock=runtime.clock).release_node(
            runtime.node, state, runtime.shutdown_reason
        )


def ended_runs(ws: Workspace, run_ids: Sequence[int]) -> set[int]:
    """Those of *run_ids* no longer running: their jobs have nothing left to do."""
    with ws.db.session() as session:
        return set(run_ids) - store.still_running(session, run_ids)


async def finish_stalled_jobs(app: procrastinate.App, ws: Workspace, *, stalled_after: float,
                              running_here: Collection[int] = ()) -> list[tuple[int, int]]:
    """Mark failed the run jobs left *doing* by a worker that stopped sending
    heartbeats (killed, or cut off) more than *stalled_after* seconds ago,
    once their run has ended (a scheduler marked it failed, node lost, when
    its lease ran out); the (job id, run id) pairs so marked.

    A job whose run is still running is left alone: its worker may only be
    late, and the run's lease decides. So are the runs this process executes
    (*running_here*): a worker that was paused sees its own heartbeat late.
    The run, not the job, is the record: this only keeps the queue's view
    (``idsync_worker_jobs``, procrastinate's tools) true."""
    from procrastinate import exceptions
    from procrastinate.jobs import Status

    stalled = await app.job_manager.get_stalled_jobs(task_name=store.TASK, seconds_since_heartbeat=stalled_after)
    runs = {int(job.id): int(str(job.task_kwargs["run_id"])) for job in stalled if job.id is not None}
    runs = {job_id: run_id for job_id, run_id in runs.items() if run_id not in running_here}
    if not runs:
        return []
    ended = await asyncio.to_thread(ended_runs, ws, sorted(set(runs.values())))
    finished = []
    for job_id, run_id in sorted(runs.items()):
        if run_id not in ended:
            continue
        try:
            await app.job_manager.finish_job_by_id_async(job_id, status=Status.FAILED, delete_job=False)
        except exceptions.ProcrastinateException:
            continue  # finished meanwhile (by another worker, or its own that came back)
        finished.append((job_id, run_id))
    return finished


def waiting(ws: Workspace) -> int:
    """How many runs wait for a worker."""
    with ws.db.session() as session:
        return store.waiting_jobs(session)


def _cause(exc: BaseException) -> str:
    inner: BaseException | None = exc
    while inner is not None and inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

