"""Executors: where claimed collection runs execute.

On one node, runs execute in threads of the scheduler's process
(:class:`ThreadExecutor`): one thread per running run, which the overlap
rule bounds by the number of collections. Several nodes hand the same
``execute_run(run_id)`` to workers on PostgreSQL instead
(:class:`idsync.runtime.worker.QueueExecutor`). When a run ends,
its thread starts the run waiting in the same collection's queue, if any.

:class:`InlineExecutor` executes in the caller's thread: a foreground
``idsync collection run``, and tests that want each step to have finished
when the call returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from idsync.errors import IdsyncError
from idsync.services import collection_runs
from idsync.services.collection_runs import Runtime
from idsync.services.request_runs import HandOff
from idsync.services.workspace import Workspace
from idsync.store.retry import retry_transient
from idsync.store.runs_repo import RunRow

log = logging.getLogger(__name__)

Finished = Callable[[RunRow], None]


class Executor(Protocol):
    """Executes claimed runs."""

    local: bool
    """Whether submitted runs execute in this process (False: workers execute them)."""

    def submit(self, run_id: int, fence: int) -> None: ...

    def submit_many(self, runs: Sequence[tuple[int, int]]) -> None:
        """Submit several runs (run id, fence) at once, in order."""
        ...

    def active(self) -> list[int]: ...

    def shutdown(self, timeout: float) -> list[int]: ...

    @property
    def hand_off(self) -> HandOff | None:
        """How the run of an approved request is handed to the workers; None:
        it is applied by whoever's approval completed it (in this process)."""
        ...


class _Base:
    local = True

    @property
    def hand_off(self) -> HandOff | None:
        return None

    def submit(self, run_id: int, fence: int) -> None:
        raise NotImplementedError

    def submit_many(self, runs: Sequence[tuple[int, int]]) -> None:
        """Each run in turn: in this process, there is no round trip to save."""
        for run_id, fence in runs:
            self.submit(run_id, fence)

    def __init__(self, ws: Workspace, runtime: Runtime, on_finished: Finished | None = None) -> None:
        self.ws = ws
        self.runtime = runtime
        self.on_finished = on_finished

    def _execute(self, run_id: int, fence: int) -> None:
        """Execute the run, then the queued runs of its collection in turn."""
        pending: list[tuple[int, int]] = [(run_id, fence)]
        while pending:
            current, held = pending.pop(0)
            try:
                row = collection_runs.execute_run(self.ws, current, held, self.runtime)
                if self.on_finished is not None:
                    self.on_finished(row)
                if self.runtime.shutdown.is_set() or row.collection_name is None:
                    return
                promoted = self._promote(row.collection_name)
            except IdsyncError as exc:
                # The database stayed away until this node shut down: what could
                # not be recorded is marked failed when the run's lease runs out.
                log.warning("run %s: %s (its lease will run out)", current, exc.message)
                return
            except Exception:
                # A bug. The run stays marked running; its lease runs out and
                # any scheduler then marks it failed with the reason.
                log.exception("run %s could not be executed", current)
                return
            for started in promoted:
                assert started.fence is not None
                pending.append((started.run_id, started.fence))


    def _promote(self, collection: str) -> list[collection_runs.Started]:
        """Start the run waiting in *collection*'s queue, if any."""
        return retry_transient(
            lambda: collection_runs.promote_queued(self.ws, self.runtime, collection),
            what=f"collection {collection!r}: starting its queued run",
            stop=self.runtime.shutdown,
        )


class InlineExecutor(_Base):
    """Executes each run in the thread that submits it, before submit returns."""

    def submit(self, run_id: int, fence: int) -> None:
        self._execute(run_id, fence)

    def active(self) -> list[int]:
        return []

    def shutdown(self, timeout: float) -> list[int]:
        self.runtime.shutdown.set()
        return []


class ThreadExecutor(_Base):
    """One thread per running run, in this process."""

    def __init__(self, ws: Workspace, runtime: Runtime, on_finished: Finished | None = None) -> None:
        super().__init__(ws, runtime, on_finished)
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    def submit(self, run_id: int, fence: int) -> None:
        thread = threading.Thread(
            target=self._run, args=(run_id, fence), name=f"run-{run_id}", daemon=True
        )
        with self._lock:
            self._threads[run_id] = thread
        thread.start()

    def _run(self, run_id: int, fence: int) -> None:
        try:
            self._execute(run_id, fence)
        finally:
            with self._lock:
                self._threads.pop(run_id, None)

    def active(self) -> list[int]:
        """The runs (first of their thread) still executing."""
        with self._lock:
            return sorted(self._threads)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no run executes; False if some still do after *timeout* seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._threads.values())
            if not threads:
                return True
            for thread in threads:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(remaining)
            if deadline is not None and time.monotonic() >= deadline:
                with self._lock:
                    return not self._threads

    def shutdown(self, timeout: float) -> list[int]:
        """Ask every executing run to stop at its next batch and wait up to
        *timeout* seconds; the runs still executing after that."""
        self.runtime.shutdown.set()
        self.wait(timeout)
        return self.active()
