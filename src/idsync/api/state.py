"""What one API process holds: the shared workspace, its sessions, and the
threads long work runs in.

Long work (a preview, a run) never runs in a request's thread: a handler
starts it here and answers 202 with the resource to follow. Collection runs
execute in the runtime's :class:`~idsync.runtime.executor.ThreadExecutor`
(the scheduler's pattern), or, with ``runs="external"``, are deferred to
``idsync worker`` processes by a :class:`~idsync.runtime.worker.QueueExecutor`
(so are the runs of requests approved here: the executor's ``hand_off``);
a job's preview or run, and other long use cases, in a thread pool owned by
the app. Shutting the app down asks every run to
stop at its next batch, waits, and marks what is still running terminated:
a stopped server never leaves a run marked running (runs it deferred are the
workers', and stay queued for them).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from typing import Any

from idsync.domain.principals import Principal
from idsync.errors import ConfigError, TransientError
from idsync.runtime.executor import Executor, ThreadExecutor
from idsync.runtime.node import WORKER_MODES
from idsync.runtime.scheduler import Scheduler
from idsync.runtime.worker import QueueExecutor, keep_waiting_thread
from idsync.services.collection_runs import Runtime
from idsync.services.workspace import Workspace

log = logging.getLogger(__name__)

API_PRINCIPAL = Principal.system("api")
"""Who executes a collection run the API started (its requester is recorded on the run)."""

START_TIMEOUT = 60.0
"""How long a handler waits for background work to record its run or plan."""


@dataclass(frozen=True)
class ApiConfig:
    """How the API behaves; the defaults suit ``idsync serve``."""

    session_secret: str | None = None
    """Key signing session cookies; default: derived from the installation's secret key."""
    session_max_age: int = 12 * 3600
    """Seconds a session cookie is valid after sign-in."""
    secure_cookies: bool | None = None
    """Mark cookies Secure: True, False, or None for "when the request came over https"."""
    shutdown_timeout: float = 30.0
    """Seconds runs get to stop by themselves when the app shuts down."""
    workers: int = 4
    """Threads for previews and job runs."""
    runs: str = "in-process"
    """Where collection runs started here (and approved requests' runs)
    execute: ``in-process`` (threads of this process) or ``external``
    (deferred to ``idsync worker`` processes, on PostgreSQL)."""

    def __post_init__(self) -> None:
        if self.runs not in WORKER_MODES:
            raise ConfigError(f"runs {self.runs!r} is not known: use {' or '.join(WORKER_MODES)}", field="runs")


@dataclass
class Task:
    """Long work with no resource of its own to follow (a collection preview):
    who started it, and its future."""

    id: int
    owner: str
    kind: str
    future: Future[Any]


class Background:
    """The threads of one API process."""

    def __init__(self, ws: Workspace, config: ApiConfig) -> None:
        self.runtime = Runtime()
        acting = ws.acting_as(API_PRINCIPAL)
        self.executor: Executor
        if config.runs == "external":
            self.executor = QueueExecutor(acting, self.runtime)
            # The runs deferred here stay leased to this node while their job waits, with or without a scheduler.
            keep_waiting_thread(acting, self.runtime, self.runtime.shutdown)
        else:
            self.executor = ThreadExecutor(acting, self.runtime)
        self._scheduler = Scheduler(acting, self.executor, self.runtime)
        self.pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="api-work")
        self.config = config
        self._futures: set[Future[Any]] = set()
        self._tasks: dict[int, Task] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def stopping(self) -> threading.Event:
        return self.runtime.shutdown

    def stop_check(self) -> str | None:
        """Asked by job runs between batches: stop when the server shuts down."""
        return self.runtime.shutdown_reason if self.runtime.shutdown.is_set() else None

    def submit(self, work: Callable[[], Any], what: str) -> Future[Any]:
        """Run *work* in the pool; its failure is logged (it is recorded on its run or plan)."""
        if self.stopping.is_set():
            raise TransientError("the server is shutting down", hint="try again once it is back")
        future = self.pool.submit(work)
        with self._lock:
            self._futures.add(future)

        def done(f: Future[Any]) -> None:
            with self._lock:
                self._futures.discard(f)
            error = f.exception()
            if error is not None:
                log.warning("%s: %s", what, getattr(error, "message", None) or error)

        future.add_done_callback(done)
        return future

    def start_tracked(self, work: Callable[[Callable[[int], None]], Any], what: str) -> int:
        """Run *work* in the pool and return the id it reports through the
        callback it is given (its run's or plan's) as soon as it is recorded.
        An error raised before that (a refusal, an unknown name) is raised
        here, so the client gets it as the answer."""
        recorded = threading.Event()
        found: list[int] = []

        def hook(item_id: int) -> None:
            found.append(item_id)
            recorded.set()

        future = self.submit(lambda: work(hook), what)
        future.add_done_callback(lambda _f: recorded.set())
        recorded.wait(START_TIMEOUT)
        if found:
            return found[0]
        if future.done():
            future.result()  # raises the refusal
        raise TransientError(f"{what} did not start within {START_TIMEOUT:g} seconds", hint="look for it among the runs")

    def start_task(self, owner: str, kind: str, work: Callable[[], Any]) -> Task:
        """Run *work* as a task a client follows by its id."""
        future = self.submit(work, kind)
        with self._lock:
            task = Task(next(self._ids), owner, kind, future)
            self._tasks[task.id] = task
        return task

    def task(self, task_id: int) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def shutdown(self) -> list[int]:
        """Stop: runs stop at their next batch; after the timeout, what still
        runs here is marked terminated. The ids of the runs marked so."""
        self.runtime.shutdown.set()
        with self._lock:
            pending = list(self._futures)
        wait_all(pending, timeout=self.config.shutdown_timeout)
        terminated = self._scheduler.shutdown(self.config.shutdown_timeout)
        self.pool.shutdown(wait=False, cancel_futures=True)
        return terminated
