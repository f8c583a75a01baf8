"""Recording a run or a preview in the database as it goes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from idsync.domain.changes import Change
from idsync.domain.results import Counts, ErrorItem
from idsync.services.workspace import Workspace
from idsync.store.plans_repo import PlanRepository
from idsync.store.retry import retry_transient
from idsync.store.runs_repo import RunRepository

ProgressCallback = Callable[[Counts], None]


class DatabaseRecorder:
    """Implements :class:`idsync.engine.runner.Recorder`: each batch of planned
    changes goes to the plan, each batch of errors to the run (if any), each in
    its own short transaction so progress is visible to other processes.

    A database away for a moment (locked, restarting) does not end the run:
    the batch is recorded once it is back, the run waiting meanwhile
    (:func:`~idsync.store.retry.retry_transient`).
    """

    def __init__(
        self,
        ws: Workspace,
        plan_id: int,
        run_id: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.ws = ws
        self.plan_id = plan_id
        self.run_id = run_id
        self.on_progress = on_progress
        self.next_seq = 0
        self.error_items: list[ErrorItem] = []
        self.last_counts = Counts()

    @property
    def what(self) -> str:
        """The run or preview, as failures to record it name it."""
        return f"run {self.run_id}" if self.run_id is not None else f"preview of plan {self.plan_id}"

    def changes(self, batch: Sequence[Change]) -> None:
        first = self.next_seq

        def write() -> None:
            with self.ws.db.session() as session:
                PlanRepository(session).add_changes(self.plan_id, batch, first)

        retry_transient(write, what=f"{self.what}: recording planned changes")
        self.next_seq += len(batch)

    def errors(self, items: Sequence[ErrorItem]) -> None:
        if self.run_id is None:
            self.error_items.extend(items)
            return
        run_id = self.run_id

        def write() -> None:
            with self.ws.db.session() as session:
                RunRepository(session).add_errors(run_id, items)

        retry_transient(write, what=f"{self.what}: recording record errors")

    def progress(self, counts: Counts) -> None:
        self.last_counts = counts
        if self.run_id is not None:
            run_id = self.run_id

            def write() -> None:
                with self.ws.db.session() as session:
                    RunRepository(session).update_counts(run_id, counts)

            retry_transient(write, what=f"{self.what}: recording its counts")
        if self.on_progress is not None:
            self.on_progress(counts)
