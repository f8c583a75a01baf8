"""Running a job: plan, then (unless previewing) apply, while recording.

The engine always computes a plan first. A preview stops there and keeps
the plan; a run streams the same changes into the directory as they are
planned, so planning and writing overlap and memory stays bounded. Either
way the changes are handed to a :class:`Recorder` in batches (the service
layer stores them as the run's plan) together with record errors and
progress counts.

While the engine runs, the objects that live for the whole run are kept
out of the cyclic garbage collector's passes (:mod:`idsync.engine.heap`).

A run can be asked to stop (terminated, or running longer than its limit):
``should_stop`` is asked after each batch is recorded, and a reason it
returns ends the run with :class:`RunTerminated`. Batches already applied stay
applied and recorded; nothing of the next batch is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from idsync.connectors.base import ApplyOutcome, Directory
from idsync.domain.changes import Change
from idsync.domain.dn import normalize_dn
from idsync.domain.entry import Attrs
from idsync.domain.results import Counts, ErrorItem
from idsync.engine.applier import count_outcome, without_conflicts
from idsync.engine.heap import frozen_heap
from idsync.engine.planner import PlanItem, Planner
from idsync.errors import RunTerminated

StopCheck = Callable[[], str | None]
"""Asked between batches: the reason to stop the run now, or None to go on."""


class Recorder(Protocol):
    """Where a run's plan, errors and progress go (the database, in practice)."""

    def changes(self, batch: Sequence[Change]) -> None: ...

    def errors(self, items: Sequence[ErrorItem]) -> None: ...

    def progress(self, counts: Counts) -> None: ...


class ApplyStep(Protocol):
    """Work done around each write, outside the plan: ``before`` adjusts a
    change just before the directory gets it (a new object's password),
    ``after`` sees its outcome first (and may adjust what the rest of the run
    sees of it); ``flush`` runs once at the end, also when the run fails."""

    def before(self, change: Change) -> Change: ...

    def after(self, outcome: ApplyOutcome) -> ApplyOutcome: ...

    def flush(self) -> None: ...


def _through(steps: Sequence[ApplyStep], changes: Iterable[Change]) -> Iterable[Change]:
    if not steps:
        return changes
    return (_before(steps, change) for change in changes)


def _before(steps: Sequence[ApplyStep], change: Change) -> Change:
    for step in steps:
        change = step.before(change)
    return change


def _after(steps: Sequence[ApplyStep], outcome: ApplyOutcome) -> ApplyOutcome:
    for step in reversed(steps):
        outcome = step.after(outcome)
    return outcome


def _flush(steps: Sequence[ApplyStep]) -> None:
    for step in steps:
        step.flush()


class _Batcher:
    """Buffers planned changes and errors, handing them to the recorder in batches."""

    def __init__(
        self,
        recorder: Recorder,
        size: int,
        counts: Callable[[], Counts],
        should_stop: StopCheck | None = None,
    ) -> None:
        self.recorder = recorder
        self.size = size
        self.counts = counts
        self.should_stop = should_stop
        self.changes: list[Change] = []
        self.errors: list[ErrorItem] = []

    def add_change(self, change: Change) -> None:
        self.changes.append(change)
        if len(self.changes) >= self.size:
            self.flush(between_batches=True)

    def add_error(self, item: ErrorItem) -> None:
        self.errors.append(item)
        if len(self.errors) >= self.size:
            self.flush(between_batches=True)

    def flush(self, *, between_batches: bool = False) -> None:
        if self.changes:
            self.recorder.changes(self.changes)
            self.changes = []
        if self.errors:
            self.recorder.errors(self.errors)
            self.errors = []
        self.recorder.progress(self.counts())
        if between_batches and self.should_stop is not None:
            reason = self.should_stop()
            if reason is not None:
                raise RunTerminated(reason)


def _changes_of(items: Iterable[PlanItem], batcher: _Batcher) -> Iterator[Change]:
    for item in items:
        if isinstance(item, ErrorItem):
            batcher.add_error(item)
        else:
            batcher.add_change(item)
            yield item


def preview(planner: Planner, recorder: Recorder, batch_size: int = 1000) -> Counts:
    """Compute the plan and record it; change nothing. Counts are what a run would do."""
    batcher = _Batcher(recorder, batch_size, lambda: planner.counts)
    with frozen_heap():
        for _ in _changes_of(planner.plan(), batcher):
            pass
        batcher.flush()
    return planner.counts


def _merge(planned: Counts, applied: Counts) -> Counts:
    """Counts of a run: reading outcomes from the planner, writing outcomes from the directory."""
    out = Counts(
        read=planned.read,
        unchanged=planned.unchanged,
        skipped=planned.skipped,
        errors=planned.errors,
    )
    out.add(applied)
    return out


def run(
    planner: Planner,
    directory: Directory,
    recorder: Recorder,
    batch_size: int = 1000,
    should_stop: StopCheck | None = None,
    steps: Sequence[ApplyStep] = (),
) -> Counts:
    """Plan and apply in one stream; record the plan, the errors and the progress.

    The plan is recorded as planned; *steps* see each change after that,
    just before the directory, so what they add is never recorded.
    """
    applied = Counts()
    batcher = _Batcher(recorder, batch_size, lambda: _merge(planner.counts, applied), should_stop)
    with frozen_heap():
        try:
            for outcome in directory.apply(_through(steps, _changes_of(planner.plan(), batcher))):
                item = count_outcome(_after(steps, outcome), applied)
                if item is not None:
                    batcher.add_error(item)
        finally:
            # Also when the run fails midway: what was planned and counted so far is recorded.
            batcher.flush()
            _flush(steps)
    return _merge(planner.counts, applied)


def apply_plan(
    changes: Iterable[Change],
    directory: Directory,
    current: Mapping[str, Attrs],
    recorder: Recorder,
    batch_size: int = 1000,
    should_stop: StopCheck | None = None,
    steps: Sequence[ApplyStep] = (),
) -> Counts:
    """Apply a stored plan, skipping (as conflicts) objects that changed since it was computed.

    *current* maps each normalised DN in the destination scope to its attributes
    now, read once before applying (see :func:`read_current`). *steps* as for :func:`run`.
    """
    counts = Counts()
    batcher = _Batcher(recorder, batch_size, lambda: counts, should_stop)
    conflicts: list[ApplyOutcome] = []
    with frozen_heap():
        try:
            for outcome in directory.apply(_through(steps, without_conflicts(changes, current, conflicts))):
                _record(_after(steps, outcome), counts, batcher)
                for conflict in conflicts:
                    _record(conflict, counts, batcher)
                conflicts.clear()
            for conflict in conflicts:
                _record(conflict, counts, batcher)
        finally:
            batcher.flush()
            _flush(steps)
    return counts


HoldCheck = Callable[[Planner], str | None]
"""Asked once the whole plan is known: the reason to hold the run, or None to apply it."""


def run_checked(
    planner: Planner,
    directory: Directory,
    recorder: Recorder,
    stored: Callable[[], Iterable[Change]],
    check: HoldCheck,
    batch_size: int = 1000,
    should_stop: StopCheck | None = None,
    steps: Sequence[ApplyStep] = (),
) -> tuple[Counts, str | None]:
    """Plan fully and record the plan, then ask *check* (a job's safety limits).

    A reason holds the run: nothing is written and the counts say only what
    was read. Otherwise the recorded plan, read back through *stored*, is
    applied as :func:`apply_plan` does (against the scope the planner read).
    Only jobs with limits pay for this; the others stream (:func:`run`).
    """
    planned = preview(planner, recorder, batch_size)
    reason = check(planner)
    if reason is not None or planned.changed == 0:
        _flush(steps)
        return _merge(planned, Counts()), reason
    current = read_current(planner)
    applied = apply_plan(stored(), directory, current, recorder, batch_size, should_stop, steps)
    return _merge(planned, applied), None


def _record(outcome: ApplyOutcome, counts: Counts, batcher: _Batcher) -> None:
    item = count_outcome(outcome, counts)
    if item is not None:
        batcher.add_error(item)


def read_current(planner: Planner) -> dict[str, Attrs]:
    """The job's destination scope as it is now: normalised DN → attributes
    (as *planner* read it, when it already has)."""
    planner.read_destination()
    current: dict[str, Attrs] = {}
    for hit in planner.index.by_key.values():
        for target in hit if isinstance(hit, list) else [hit]:
            current[normalize_dn(target.dn)] = target.attrs
    return current
