"""Runs executed by workers on other machines, through procrastinate.

With ``--workers=external`` a scheduler (or ``idsync serve``) still records
the occurrence and claims each run in one transaction, exactly as on one
node; :class:`QueueExecutor` then defers a procrastinate job naming the run
and its fence instead of starting a thread. An ``idsync worker``
(:func:`run_worker`) picks the job, takes the run over at that fence
(a new fence, its own node name, a fresh lease) and executes it through the
same path as the in-process executor
(:func:`idsync.services.collection_runs.execute_run`, then the queued run of
the same collection). ``idsync serve --workers=external`` defers the runs
its API and portal start the same way, and the run of a request approved
there: that job names the request too, and the worker applies the
request's plans (:func:`idsync.services.request_runs.execute_claimed`).

What keeps runs from being lost or doubled is the database, not the queue:

- a collection has one running run at most (a partial unique index), so
  two jobs never execute two runs of one collection at once;
- a job whose run is no longer held at its fence (it ended, or its lease
  ran out) executes nothing;
- a worker killed mid-run stops renewing its lease, and any scheduler marks
  the run failed (node lost) once it runs out, which queues the
  collection's *failed* notification;
- a worker stopped past its lease (SIGSTOP, a network partition) finds its
  lease taken when it comes back: the fence refuses its result, and its
  heartbeat stops the run at its next batch;
- a worker that loses its database connections (PostgreSQL restarting,
  ``pg_terminate_backend``) keeps trying each step of the run's
  bookkeeping with a growing wait, so a short outage lets the run finish;
  when the outage outlasts the lease, the run is marked failed (node lost)
  and the worker's late writes are refused by the fence. The worker itself
  reconnects: procrastinate's pool replaces dead connections, and a worker
  loop that stopped on a lost connection starts again after a wait.

While a job waits for a free worker its run stays leased to the node that
deferred it: every scheduler tick and every worker renews the leases of runs
whose job waits (:func:`idsync.store.job_queue.keep_waiting_runs`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from idsync.domain.results import RunState
from idsync.errors import IdsyncError, TransientError
from idsync.runtime.executor import Finished, InlineExecutor
from idsync.services import job_queue, request_runs
from idsync.services.collection_runs import DEFAULT_LEASE, Runtime
from idsync.services.request_runs import HandOff
from idsync.services.workspace import Workspace
from idsync.store.retry import Backoff

log = logging.getLogger(__name__)

WORKER_SHUTDOWN_REASON = "terminated: the worker was shut down"

Say = Callable[[str], None]


class QueueExecutor:
    """Hands claimed runs to the workers: a procrastinate job per run."""

    local = False
    """Runs submitted here execute elsewhere: shutting this node down leaves them to the workers."""

    def __init__(self, ws: Workspace, runtime: Runtime, *, queue: str = job_queue.QUEUE) -> None:
        self.ws = ws
        self.runtime = runtime
        self.queue = queue
        self._queue = job_queue.open_queue(ws)
        self._lock = threading.Lock()

    def submit(self, run_id: int, fence: int) -> None:
        """Defer run *run_id*; when the queue cannot be reached, the run's lease
        runs out (nobody renews it) and it is marked failed with the cause."""
        self._defer(run_id, fence)

    @property
    def hand_off(self) -> HandOff:
        """Approved requests' runs go to the workers as well (:meth:`defer_approved`)."""
        return self.defer_approved

    def defer_approved(self, run_id: int, fence: int, request_id: int) -> None:
        """Defer run *run_id* of approved request *request_id*: the worker
        applies the request's plans (:func:`idsync.services.request_runs.execute_claimed`).
        A run the queue refused fails once its lease runs out, as :meth:`submit`'s."""
        self._defer(run_id, fence, request_id)

    def _defer(self, run_id: int, fence: int, request_id: int | None = None) -> None:
        try:
            with self._lock:  # one connection pool, used from the scheduler's threads in turn
                job = self._queue.defer(run_id, fence, queue=self.queue, request_id=request_id)
        except IdsyncError as exc:
            log.warning("run %s not handed to the workers: %s (it is marked failed once its lease runs out)",
                        run_id, exc.message)
            return
        except Exception:  # a bug must not stop the scheduler: the run's lease runs out
            log.exception("run %s not handed to the workers (it is marked failed once its lease runs out)", run_id)
            return
        log.info("run %s deferred to the workers (job %s)", run_id, job)

    def submit_many(self, runs: Sequence[tuple[int, int]]) -> None:
        """Defer several runs (run id, fence) in one round trip (a scheduler's
        batch of occurrences); one by one, as :meth:`submit`, when the batch is refused."""
        if len(runs) < 2:
            for run_id, fence in runs:
                self.submit(run_id, fence)
            return
        try:
            with self._lock:
                jobs = self._queue.defer_many(runs, queue=self.queue)
        except TransientError as exc:
            log.warning("runs %s not handed to the workers: %s (they are marked failed once their lease runs out)",
                        ", ".join(str(run_id) for run_id, _fence in runs), exc.message)
            return
        except IdsyncError:
            for run_id, fence in runs:
                self.submit(run_id, fence)
            return
        except Exception:  # a bug must not stop the scheduler: the runs' leases run out
            log.exception("runs %s not handed to the workers (they are marked failed once their lease runs out)",
                          ", ".join(str(run_id) for run_id, _fence in runs))
            return
        for (run_id, _fence), job in zip(runs, jobs, strict=False):
            log.info("run %s deferred to the workers (job %s)", run_id, job)

    def active(self) -> list[int]:
        return []

    def shutdown(self, timeout: float) -> list[int]:
        self.runtime.shutdown.set()
        self._queue.close()
        return []


@dataclass(frozen=True)
class WorkerNode:
    """What an ``idsync worker`` does."""

    concurrency: int = 4
    queues: tuple[str, ...] = (job_queue.QUEUE,)
    lease: timedelta = DEFAULT_LEASE
    node: str | None = None
    shutdown_timeout: float = 30.0
    once: bool = False
    """Execute the jobs waiting now, then return (tests, and draining a queue)."""


def run_worker(ws: Workspace, options: WorkerNode, runtime: Runtime, stop: threading.Event, say: Say,
               on_finished: Finished | None = None) -> None:
    """Execute deferred runs until *stop* is set; then stop taking jobs, ask
    the runs executing here to stop at their next batch, wait up to
    ``shutdown_timeout`` seconds, and mark what still runs here terminated."""
    job_queue.require_workers(ws)
    executor = InlineExecutor(ws, runtime, on_finished=on_finished)
    backoff = Backoff()
    keeper = threading.Thread(target=_keep_waiting, args=(ws, runtime, stop), name="waiting-runs", daemon=True)
    keeper.start()
    say(f"worker {runtime.node} started (concurrency {options.concurrency}, queues "
        f"{', '.join(options.queues)}, lease {options.lease.total_seconds():g}s)")
    try:
        while not stop.is_set():
            try:
                asyncio.run(_serve(ws, options, runtime, executor, stop))
            except IdsyncError as exc:
                wait = backoff.next()
                say(f"worker: {exc.message}; starting again in {wait:g}s")
                stop.wait(wait)
                continue
            if options.once:
                break
            if not stop.is_set():  # the loop ended by itself (its database connection was lost)
                wait = backoff.next()
                say(f"worker: its job loop stopped (database connection lost); starting again in {wait:g}s")
                stop.wait(wait)
    finally:
        stop.set()
        runtime.shutdown.set()
        for run_id in _release(ws, runtime):
            say(f"run {run_id} marked terminated")
        keeper.join(timeout=5)
        say(f"worker {runtime.node} stopped")


async def _serve(ws: Workspace, options: WorkerNode, runtime: Runtime, executor: InlineExecutor,
                 stop: threading.Event) -> None:
    """One life of the procrastinate worker, until *stop* or a lost connection."""
    loop = asyncio.get_running_loop()
    # procrastinate runs synchronous tasks in the loop's default executor: one thread per concurrent run.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="run"))

    running_here: set[int] = set()

    def execute(run_id: int, fence: int, request_id: int | None) -> None:
        running_here.add(run_id)
        try:
            taken = job_queue.take_over(ws, runtime, run_id, fence)
            if taken is None:
                log.info("run %s was no longer waiting for a worker (it ended, or its lease ran out): not executed",
                         run_id)
                return
            if request_id is not None:
                _apply_request(ws, runtime, executor, request_id, run_id, taken)
                return
            executor.submit(run_id, taken)
        finally:
            running_here.discard(run_id)

    lease = runtime.lease.total_seconds()
    app = job_queue.worker_app(ws, execute, pool_size=options.concurrency + 2)
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(
                queues=list(options.queues), name=runtime.node, concurrency=options.concurrency,
                install_signal_handlers=False, wait=not options.once, delete_jobs="successful",
                shutdown_graceful_timeout=options.shutdown_timeout, fetch_job_polling_interval=1.0,
                abort_job_polling_interval=5.0,
                # A heartbeat every third of the lease; a worker silent for three leases is gone.
                update_heartbeat_interval=max(lease / 3, 0.2), stalled_worker_timeout=stalled_after(lease),
            )
        )
        cleaner = asyncio.create_task(_finish_stalled(app, ws, lease, running_here))
        while not worker.done() and not stop.is_set():
            await asyncio.wait({worker}, timeout=0.2)
        cleaner.cancel()
        if not worker.done():
            runtime.shutdown.set()  # runs stop at their next batch; procrastinate waits for them
            worker.cancel()
        try:
            await worker
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            raise TransientError(f"the job queue failed: {type(exc).__name__}: {exc}") from exc


def stalled_after(lease: float) -> float:
    """Seconds without a heartbeat after which a worker is taken for gone: three leases."""
    return max(3 * lease, 1.0)


async def _finish_stalled(app: Any, ws: Workspace, lease: float, running_here: set[int]) -> None:
    """Now and every three leases: jobs left *doing* by a worker that is gone,
    whose run has ended, are marked failed in the queue (see
    :func:`idsync.services.job_queue.finish_stalled_jobs`)."""
    while True:
        try:
            for job_id, run_id in await job_queue.finish_stalled_jobs(
                app, ws, stalled_after=stalled_after(lease), running_here=running_here
            ):
                log.info("job %s of run %s marked failed in the queue: its worker is gone and the run ended",
                         job_id, run_id)
        except IdsyncError as exc:
            log.warning("worker: jobs of workers that are gone not looked at: %s", exc.message)
        except Exception as exc:  # the queue's database away: the next pass tries again
            log.warning("worker: jobs of workers that are gone not looked at: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(stalled_after(lease))


def _apply_request(ws: Workspace, runtime: Runtime, executor: InlineExecutor, request_id: int, run_id: int,
                   fence: int) -> None:
    """Apply approved request *request_id* through its run, taken over at
    *fence*; failures are logged, as the executor's are (what could not be
    recorded is marked failed when the run's lease runs out)."""
    try:
        row = request_runs.execute_claimed(ws, request_id, run_id, fence, runtime)
    except IdsyncError as exc:
        log.warning("run %s of request %s: %s (its lease will run out)", run_id, request_id, exc.message)
        return
    except Exception:  # a bug: the run's lease runs out and a scheduler marks it failed
        log.exception("run %s of request %s could not be executed", run_id, request_id)
        return
    if executor.on_finished is not None:
        executor.on_finished(row)


def keep_waiting_thread(ws: Workspace, runtime: Runtime, stop: threading.Event) -> threading.Thread:
    """Start a thread renewing, until *stop*, the leases of runs whose job waits
    for a worker (a node that defers runs without a scheduler: a server)."""
    keeper = threading.Thread(target=_keep_waiting, args=(ws, runtime, stop), name="waiting-runs", daemon=True)
    keeper.start()
    return keeper


def _keep_waiting(ws: Workspace, runtime: Runtime, stop: threading.Event) -> None:
    """Every third of the lease, renew the leases of runs whose job waits for a worker."""
    interval = max(runtime.lease.total_seconds() / 3, 0.2)
    while not stop.wait(interval):
        try:
            job_queue.keep_waiting(ws, runtime)
        except IdsyncError as exc:
            log.warning("worker: waiting runs' leases not renewed: %s", exc.message)


def _release(ws: Workspace, runtime: Runtime) -> list[int]:
    try:
        return job_queue.release_node(ws, runtime, RunState.TERMINATED)
    except IdsyncError as exc:
        log.warning("worker: runs of this node not marked terminated (%s): they are marked failed once "
                    "their lease runs out", exc.message)
        return []
