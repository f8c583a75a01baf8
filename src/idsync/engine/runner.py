"""Running a job: plan, then (unless previewing) apply, while recording.

The engine always computes a plan first. A preview stops there and keeps
the plan; a run streams the same changes into the directory as they are
planned, so planning and writing overlap and memory stays bounded. Either
way the changes are handed to a :class:`Recorder` in batches (the service
layer stores them as the run's plan) together with record errors and
progress counts.
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
from idsync.engine.planner import PlanItem, Planner


class Recorder(Protocol):
    """Where a run's plan, errors and progress go (the database, in practice)."""

    def changes(self, batch: Sequence[Change]) -> None: ...

    def errors(self, items: Sequence[ErrorItem]) -> None: ...

    def progress(self, counts: Counts) -> None: ...


class _Batcher:
    """Buffers planned changes and errors, handing them to the recorder in batches."""

    def __init__(self, recorder: Recorder, size: int, counts: Callable[[], Counts]) -> None:
        self.recorder = recorder
        self.size = size
        self.counts = counts
        self.changes: list[Change] = []
        self.errors: list[ErrorItem] = []

    def add_change(self, change: Change) -> None:
        self.changes.append(change)
        if len(self.changes) >= self.size:
            self.flush()

    def add_error(self, item: ErrorItem) -> None:
        self.errors.append(item)
        if len(self.errors) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.changes:
            self.recorder.changes(self.changes)
            self.changes = []
        if self.errors:
            self.recorder.errors(self.errors)
            self.errors = []
        self.recorder.progress(self.counts())


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


def run(planner: Planner, directory: Directory, recorder: Recorder, batch_size: int = 1000) -> Counts:
    """Plan and apply in one stream; record the plan, the errors and the progress."""
    applied = Counts()
    batcher = _Batcher(recorder, batch_size, lambda: _merge(planner.counts, applied))
    try:
        for outcome in directory.apply(_changes_of(planner.plan(), batcher)):
            item = count_outcome(outcome, applied)
            if item is not None:
                batcher.add_error(item)
    finally:
        # Also when the run fails midway: what was planned and counted so far is recorded.
        batcher.flush()
    return _merge(planner.counts, applied)


def apply_plan(
    changes: Iterable[Change],
    directory: Directory,
    current: Mapping[str, Attrs],
    recorder: Recorder,
    batch_size: int = 1000,
) -> Counts:
    """Apply a stored plan, skipping (as conflicts) objects that changed since it was computed.

    *current* maps each normalised DN in the destination scope to its attributes
    now, read once before applying (see :func:`read_current`).
    """
    counts = Counts()
    batcher = _Batcher(recorder, batch_size, lambda: counts)
    conflicts: list[ApplyOutcome] = []
    try:
        for outcome in directory.apply(without_conflicts(changes, current, conflicts)):
            _record(outcome, counts, batcher)
            for conflict in conflicts:
                _record(conflict, counts, batcher)
            conflicts.clear()
        for conflict in conflicts:
            _record(conflict, counts, batcher)
    finally:
        batcher.flush()
    return counts


def _record(outcome: ApplyOutcome, counts: Counts, batcher: _Batcher) -> None:
    item = count_outcome(outcome, counts)
    if item is not None:
        batcher.add_error(item)


def read_current(planner: Planner) -> dict[str, Attrs]:
    """The job's destination scope as it is now: normalised DN → attributes."""
    planner.read_destination()
    current: dict[str, Attrs] = {}
    for hit in planner.index.by_key.values():
        for target in hit if isinstance(hit, list) else [hit]:
            current[normalize_dn(target.dn)] = target.attrs
    return current
