"""Running a job: plan, then (unless previewing) apply, while recording.

The engine always computes a plan first. A preview stops there and keeps
the plan (:func:`preview`); a run streams the same changes into the
directory as they are planned, so planning and writing overlap and memory
stays bounded (:func:`run`). Either way the changes are handed to a
:class:`Recorder` in batches (the service layer stores them as the run's
plan) together with record errors and progress counts. A stored plan is
applied later with its preconditions (:func:`apply_plan`), against the
destination only: its source is not read again.

While the engine runs, the objects that live for the whole run are kept
out of the cyclic garbage collector's passes (:mod:`idsync.engine.heap`).

A run can be asked to stop (terminated, or running longer than its limit):
``should_stop`` is asked after each batch is recorded, and also between two
records read from the source once :data:`STOP_CHECK_SECONDS` have passed
since it was last asked (a batch of slow records, or of records that change
nothing, can take long); a reason it returns ends the run with
:class:`RunTerminated`. What was written stays written and recorded; nothing
after it is. A stop seen between records ends the stream of changes there,
so the directory still applies and reports every change handed to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from idsync.connectors.base import ApplyOutcome, Directory
from idsync.domain.changes import Change
from idsync.domain.definitions import JobDefinition
from idsync.domain.dn import normalize_dn
from idsync.domain.entry import Attrs, Record, Scope
from idsync.domain.results import Counts, ErrorItem
from idsync.engine.applier import (
    ChecksValues,
    Preconditions,
    Verdict,
    conflict_outcome,
    count_outcome,
    guard,
)
from idsync.engine.heap import frozen_heap
from idsync.engine.planner import ANCHOR_ATTRIBUTES, PlanItem, Planner, scope_filter
from idsync.errors import NotFoundError, RecordError, RunTerminated

StopCheck = Callable[[], str | None]
"""Asked between batches: the reason to stop the run now, or None to go on."""

STOP_CHECK_SECONDS = 1.0
"""How long a run reads records, at most, without asking whether to stop
(a record's own time is bounded by ``IDSYNC_RECORD_TIME_LIMIT_SECONDS``)."""


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
        self.stopped: str | None = None  # the reason a stop was seen between records

    def end_if_stopped(self) -> None:
        """Raise RunTerminated when a stop was seen between records."""
        if self.stopped is not None:
            raise RunTerminated(self.stopped)

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


class _StopSeen(Exception):
    """Raised through the planner when a stop was seen between records."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Watched:
    """A source that asks *should_stop* between two records once
    :data:`STOP_CHECK_SECONDS` have passed: one clock reading per record."""

    def __init__(self, source: Any, should_stop: StopCheck) -> None:
        self.source = source
        self.should_stop = should_stop

    def read(self) -> Iterator[Record | RecordError]:
        should_stop, clock, every = self.should_stop, time.monotonic, STOP_CHECK_SECONDS
        next_check = clock() + every
        for item in self.source.read():
            now = clock()
            if now >= next_check:
                next_check = now + every
                reason = should_stop()
                if reason is not None:
                    raise _StopSeen(reason)
            yield item

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


@contextmanager
def _watched(planner: Planner, should_stop: StopCheck | None) -> Iterator[None]:
    """While the block runs, *planner* reads its source through :class:`_Watched`."""
    if should_stop is None:
        yield
        return
    source = planner.source
    planner.source = _Watched(source, should_stop)
    try:
        yield
    finally:
        planner.source = source


def _changes_of(items: Iterable[PlanItem], batcher: _Batcher) -> Iterator[Change]:
    try:
        for item in items:
            if isinstance(item, ErrorItem):
                batcher.add_error(item)
            else:
                batcher.add_change(item)
                yield item
    except _StopSeen as stop:
        # The stream ends here; the caller raises RunTerminated once the directory is done.
        batcher.stopped = stop.reason


def preview(
    planner: Planner, recorder: Recorder, batch_size: int = 1000, should_stop: StopCheck | None = None
) -> Counts:
    """Compute the plan and record it; change nothing. Counts are what a run would do."""
    batcher = _Batcher(recorder, batch_size, lambda: planner.counts, should_stop)
    with frozen_heap(), _watched(planner, should_stop):
        for _ in _changes_of(planner.plan(), batcher):
            pass
        batcher.flush()
        batcher.end_if_stopped()
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


class _Writer:
    """Sends changes through the steps to the directory and settles each one.

    Each change goes through the steps (``before``), then :func:`guard` (the
    server's own preconditions); its outcome goes back through the steps
    (``after``, which see the change they produced) and is counted against
    the change as planned. A change the server refused is looked at again
    when it was guarded or its preconditions were checked: already applied
    (counted unchanged), a conflict, or the server's error as it stands.
    A plain run's unguarded change refused by the server (a create whose DN
    is taken) stays the server's error.
    """

    def __init__(
        self,
        directory: Directory,
        steps: Sequence[ApplyStep],
        preconditions: Preconditions,
        counts: Counts,
        batcher: _Batcher,
    ) -> None:
        self.directory = directory
        self.steps = steps
        self.preconditions = preconditions
        self.counts = counts
        self.batcher = batcher
        self.checks_values: ChecksValues | None = getattr(directory, "checks_values", None)
        # id of the change sent -> (the change as planned, the change the steps made of it)
        self._sent: dict[int, tuple[Change, Change]] = {}
        self._settled: list[tuple[Change, Verdict]] = []
        self.checking = False

    def write(self, changes: Iterable[Change], *, check: bool) -> None:
        """Apply *changes*; with *check*, each is first sorted by the preconditions."""
        self.checking = check
        for outcome in self.directory.apply(self._outgoing(changes, check)):
            self._settle(outcome)
            self._drain()
        self._drain()

    def _outgoing(self, changes: Iterable[Change], check: bool) -> Iterator[Change]:
        for taken, change in enumerate(changes):
            if check and taken and taken % self.batcher.size == 0:
                # Between two batches of a stored plan (no planning marks them): progress, and a
                # stop asked for ends the run here, before the next batch is handed over. The
                # directory reports what it was given before, so every write is counted.
                self.batcher.flush(between_batches=True)
            todo = change
            if check:
                verdict = self.preconditions.check(change)
                if verdict.send is None:
                    # Recorded by the consumer, between outcomes (never from inside the directory's loop).
                    self._settled.append((change, verdict))
                    continue
                todo = verdict.send
            stepped = _before(self.steps, todo)
            sent = guard(stepped, self.checks_values)
            self._sent[id(sent)] = (change, stepped)
            yield sent

    def _settle(self, outcome: ApplyOutcome) -> None:
        planned, stepped = self._sent.pop(id(outcome.change), (outcome.change, outcome.change))
        seen = _after(self.steps, ApplyOutcome(stepped, outcome.error))
        error = seen.error
        if error is not None and (self.checking or outcome.change is not stepped):
            verdict = self.preconditions.recheck(planned)
            if verdict.send is None:
                self._record(planned, verdict)
                return
        self._count(ApplyOutcome(planned, error))

    def _drain(self) -> None:
        for change, verdict in self._settled:
            self._record(change, verdict)
        self._settled.clear()

    def _record(self, change: Change, verdict: Verdict) -> None:
        if verdict.conflict is not None:
            self._count(conflict_outcome(change, verdict.conflict))
            return
        self.counts.unchanged += 1  # already applied: nothing written

    def _count(self, outcome: ApplyOutcome) -> None:
        item = count_outcome(outcome, self.counts)
        if item is not None:
            self.batcher.add_error(item)


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
    writer = _Writer(directory, steps, job_preconditions(planner.job, directory, {}), applied, batcher)
    with frozen_heap(), _watched(planner, should_stop):
        try:
            writer.write(_changes_of(planner.plan(), batcher), check=False)
            batcher.end_if_stopped()
        finally:
            # Also when the run fails midway: what was planned and counted so far is recorded.
            batcher.flush()
            _flush(steps)
    return _merge(planner.counts, applied)


def apply_plan(
    changes: Iterable[Change],
    directory: Directory,
    preconditions: Preconditions,
    recorder: Recorder,
    batch_size: int = 1000,
    should_stop: StopCheck | None = None,
    steps: Sequence[ApplyStep] = (),
    start: Counts | None = None,
) -> Counts:
    """Apply a stored plan with its preconditions (see :mod:`idsync.engine.applier`):
    what is applied already is skipped (counted unchanged), objects changed
    since the plan was computed are left untouched (conflicts).

    *preconditions* hold the destination as read just before (see
    :func:`read_scope`). The counts start from *start* (what the plan's
    computation counted: its record errors, say). *steps* as for :func:`run`.
    """
    counts = Counts()
    if start is not None:
        counts.add(start)
    batcher = _Batcher(recorder, batch_size, lambda: counts, should_stop)
    writer = _Writer(directory, steps, preconditions, counts, batcher)
    with frozen_heap():
        try:
            writer.write(changes, check=True)
        finally:
            batcher.flush()
            _flush(steps)
    return counts


HoldCheck = Callable[[Planner], str | None]
"""Asked once the whole plan is known and recorded: the reason to hold the run, or None to apply it."""


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
    applied as :func:`apply_plan` does, against the scope the planner read.
    Only jobs with limits pay for this; the others stream (:func:`run`).
    """
    planned = preview(planner, recorder, batch_size, should_stop)
    reason = check(planner)
    read = _merge(planned, Counts())
    if reason is not None or planned.changed == 0:
        _flush(steps)
        return read, reason
    preconditions = job_preconditions(planner.job, directory, read_current(planner))
    applied = apply_plan(stored(), directory, preconditions, recorder, batch_size, should_stop, steps, start=read)
    return applied, None


def job_preconditions(job: JobDefinition, directory: Directory, current: Mapping[str, Attrs]) -> Preconditions:
    """The preconditions of *job*'s changes, with *current* read before applying."""
    anchors = anchor_attributes(directory)

    def lookup(dn: str) -> Attrs | None:
        try:
            for entry in directory.search(dn, Scope.BASE, "(objectClass=*)", ["*", *anchors]):
                return entry.attrs
        except NotFoundError:
            return None
        return None

    keys = job.key_mappings
    return Preconditions(current, lookup, key_attribute=keys[0].attribute if keys else None, anchors=anchors)


def anchor_attributes(directory: Directory) -> tuple[str, ...]:
    return tuple(getattr(directory, "anchor_attributes", ANCHOR_ATTRIBUTES))


def read_scope(job: JobDefinition, directory: Directory) -> dict[str, Attrs]:
    """The objects in *job*'s destination scope as they are now: normalised DN →
    the attributes the job's changes touch. One paged search, and no source:
    what applying a stored plan checks its preconditions against."""
    dest = job.destination
    wanted = {m.attribute for m in job.mappings} | set(anchor_attributes(directory)) | {dest.rdn, "objectClass"}
    if job.actions.disable_with:
        wanted.add(job.actions.disable_with.attribute)
    else:
        account = getattr(directory, "account_control", None)
        if account is not None:
            wanted.update(account.attributes)
    current: dict[str, Attrs] = {}
    for entry in directory.search(dest.search_base, dest.scope, scope_filter(job), sorted(wanted)):
        current[normalize_dn(entry.dn)] = entry.attrs
    return current


def read_current(planner: Planner) -> dict[str, Attrs]:
    """The job's destination scope as it is now: normalised DN → attributes
    (as *planner* read it, when it already has)."""
    planner.read_destination()
    current: dict[str, Attrs] = {}
    for hit in planner.index.by_key.values():
        for target in hit if isinstance(hit, list) else [hit]:
            current[normalize_dn(target.dn)] = target.attrs
    return current
