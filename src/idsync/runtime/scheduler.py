"""The scheduler: every tick, record what is due and start it, exactly once.

For each enabled schedule, the tick looks at the occurrences of its
triggers between the schedule's cursor (how far it was looked at before)
and now, using :mod:`idsync.scheduling.triggers`:

- an occurrence due within the schedule's ``grace`` is inserted as a row
  unique on (schedule, trigger, due time); the node whose insert went in
  starts the schedule's target collections, through the executor. The
  occurrence and its runs are committed in one transaction
  (:mod:`idsync.services.occurrence_runs`): a scheduler dying in between
  leaves neither, and the next tick fires the occurrence. The occurrences
  one tick finds due are fired :data:`FIRE_BATCH` to a transaction (their
  runs audited under one lock of the audit trail, handed to the executor
  at once), so a minute with hundreds due costs a few transactions, not
  hundreds;
- occurrences older than the grace (no scheduler was running), and those
  on time but followed by a later one in the same look, are recorded as
  *missed*, compactly (:func:`~idsync.services.occurrence_runs.record_missed`),
  with one *missed* run per target saying how many and when; with the
  ``run_once`` misfire policy the targets then run once now, however many
  were missed, unless an occurrence runs on time;
- start-up triggers fire when the scheduler starts.

Every tick also marks failed the runs whose lease ran out (their node is
gone), moves workflow requests along (expires, escalates, and finishes
executions that were interrupted: :func:`~idsync.services.request_runs.sweep`)
and starts queued runs whose collection is free. The clock is
injected, so tests decide what time it is.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from idsync.domain.collections import CollectionDefinition
from idsync.domain.results import RunState
from idsync.errors import IdsyncError, StateConflictError, TransientError
from idsync.runtime.executor import Executor
from idsync.scheduling.triggers import at_startup, schedule_occurrences
from idsync.services import (
    collection_runs,
    collections,
    job_queue,
    occurrence_runs,
    reaping,
    request_runs,
    schedules,
)
from idsync.services.collection_runs import Runtime, Started
from idsync.services.schedules import StoredSchedule
from idsync.services.workspace import Workspace
from idsync.store.plans_repo import PREVIEW_LOST, PlanRepository
from idsync.store.retry import Backoff
from idsync.store.scheduling_repo import NODE_LOST, SchedulingRepository

log = logging.getLogger(__name__)

CURSOR_REFRESH = timedelta(minutes=5)
"""How far behind a schedule's cursor may stay when nothing fired before a tick moves it."""

FIRE_BATCH = 50
"""Occurrences fired in one transaction: a busy minute's are recorded (and
their runs audited under one lock of the audit trail) a batch at a time,
then handed to the executor before the next batch."""

Target = tuple[int, CollectionDefinition]
"""A schedule's target collection: its id and definition."""

ToFire = tuple[StoredSchedule, occurrence_runs.Firing]
"""An occurrence to fire, with its schedule."""

RUN_NOW_TRIGGER = occurrence_runs.RUN_NOW_TRIGGER
"""The trigger index of occurrences recorded by "run now"."""


@dataclass
class TickReport:
    """What one tick (or the start) did."""

    at: datetime
    fired: int = 0
    missed: int = 0
    started: list[int] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


Listener = Callable[[str], None]


class Scheduler:
    """Fires the due occurrences of every schedule; one per process (node)."""

    def __init__(
        self,
        ws: Workspace,
        executor: Executor,
        runtime: Runtime,
        *,
        on_event: Listener | None = None,
        schedule_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.ws = ws
        self.executor = executor
        self.runtime = runtime
        self.on_event = on_event
        self.schedule_clock = schedule_clock or runtime.clock
        """The time schedules are looked at; the runtime's clock (leases, runs)
        unless a test runs the schedules faster (setting clock_speed)."""
        self._startup_repeats: list[tuple[datetime, int, int]] = []
        """Repeats of start-up triggers still to come: (due, schedule id, trigger index)."""
        self._startup_read = False

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.runtime.clock

    # ------------------------------------------------------------ lifecycle

    def start(self) -> TickReport:
        """What happens when the scheduler starts: lost runs are marked failed,
        start-up triggers fire, then a first tick."""
        now = self.schedule_clock()
        report = TickReport(now)
        self._expire(report)
        if not self._startup_read:
            # Once only, even when the first tick fails and start is tried
            # again: start-up triggers fire once per start of the process.
            for stored in schedules.stored_schedules(self.ws):
                if stored.definition.enabled:
                    for index, trigger in enumerate(stored.definition.triggers):
                        self._startup_repeats.extend((at, stored.id, index) for at in at_startup(trigger, now))
            self._startup_read = True
        self._merge(report, self.tick())
        return report

    def tick(self) -> TickReport:
        """One pass over every schedule at the clock's current time."""
        now = self.schedule_clock()
        report = TickReport(now)
        if not self.executor.local:
            # Before the look for lost runs: a run waiting for a free worker is not lost.
            job_queue.keep_waiting(self.ws, self.runtime)
        self._expire(report)
        # A node deferring its runs hands an interrupted approval's run to the workers too.
        for line in request_runs.sweep(self.ws, self.runtime, self.executor.hand_off):
            self._event(report, line)
        targets = self._targets()
        stored_schedules = schedules.stored_schedules(self.ws)
        self._fire_startup(stored_schedules, now, targets, report)
        order = list(stored_schedules)
        if not self.executor.local:
            # Several scheduler nodes: each goes through the schedules in an order
            # of its own, so that they share the work of a busy minute instead
            # of racing each other for the same occurrences in turn.
            random.shuffle(order)
        with self.ws.db.session() as session:
            # One read for all: a cursor another node moves meanwhile only makes
            # this node find an occurrence recorded already, which it leaves.
            cursors = SchedulingRepository(session).cursors()
        due: list[ToFire] = []
        refresh: set[int] = set()
        for stored in order:
            try:
                firings, stale = self._process(
                    stored, now, targets.get(stored.definition.name, []), report, cursors.get(stored.id)
                )
            except TransientError:
                raise  # the database is away: the whole tick is tried again later
            except IdsyncError as exc:
                self._event(report, f"schedule {stored.definition.name!r}: {exc.message}")
                continue
            due += firings
            if stale:
                refresh.add(stored.id)
        failed: set[int] = set()
        for first in range(0, len(due), FIRE_BATCH):
            failed |= self._fire_batch(due[first:first + FIRE_BATCH], report)
        if refresh - failed:
            # Once their occurrences are recorded (firing moved these cursors
            # to them), and never past one that could not be.
            with self.ws.db.session() as session:
                repo = SchedulingRepository(session)
                for schedule_id in sorted(refresh - failed):
                    repo.advance_cursor(schedule_id, now)
        for started in collection_runs.promote_queued(self.ws, self.runtime):
            assert started.fence is not None
            self._event(report, f"run {started.run_id} of collection {started.collection!r} started from the queue")
            report.started.append(started.run_id)
            self.executor.submit(started.run_id, started.fence)
        return report

    def serve(self, stop: threading.Event, tick_seconds: float) -> None:
        """Start, then tick every *tick_seconds* (just after each whole
        multiple of it on the wall clock) until *stop* is set.

        A database that is away for a moment (locked, restarting, its
        connections cut) stops nothing: the failure is logged in one line,
        and the start or tick is tried again after a wait doubling from 1 s
        up to 30 s. Occurrences due meanwhile fire once it is back: the
        schedules' cursors only move forward once a tick has recorded them.
        """
        backoff = Backoff()
        step = self.start
        while not stop.is_set():
            wait = tick_seconds
            try:
                step()
            except TransientError as exc:
                wait = backoff.next()
                log.warning("scheduler: %s; trying again in %gs", exc.message, wait)
            except IdsyncError as exc:
                log.warning("tick failed: %s", exc.message)
            else:
                step = self.tick
                backoff.reset()
                wait = _until_next_tick(tick_seconds)
            stop.wait(wait)

    def shutdown(self, timeout: float) -> list[int]:
        """Stop the runs this node executes (at their next batch), wait up to
        *timeout* seconds, then mark whatever is still running here terminated;
        the ids of the runs marked so."""
        self.executor.shutdown(timeout)
        if not self.executor.local:
            return []  # the runs it deferred are the workers' (their leases are renewed while they wait)
        try:
            with self.ws.db.session() as session:
                repo = SchedulingRepository(session, clock=self.clock)
                return repo.release_node(self.runtime.node, RunState.TERMINATED, self.runtime.shutdown_reason)
        except TransientError as exc:
            log.warning(
                "scheduler: runs of this node not marked terminated (%s): they are marked failed once their lease runs out",
                exc.message,
            )
            return []

    # ------------------------------------------------------------ one schedule

    def _fire_startup(
        self,
        stored_schedules: list[StoredSchedule],
        now: datetime,
        targets: dict[str, list[Target]],
        report: TickReport,
    ) -> None:
        """Fire the start-up triggers (and their repeats) now due: of the
        repeats of one trigger due at once (the ticks fell behind), the latest."""
        latest: dict[tuple[int, int], datetime] = {}
        for at, schedule_id, index in self._startup_repeats:
            if at <= now:
                latest[schedule_id, index] = max(at, latest.get((schedule_id, index), at))
        self._startup_repeats = [item for item in self._startup_repeats if item[0] > now]
        by_id = {stored.id: stored for stored in stored_schedules}
        for at, schedule_id, index in sorted((at, *key) for key, at in latest.items()):
            stored = by_id.get(schedule_id)
            if stored is not None and stored.definition.enabled:
                self._fire(stored, index, at, targets.get(stored.definition.name, []), "startup", report)

    def _process(
        self,
        stored: StoredSchedule,
        now: datetime,
        targets: list[Target],
        report: TickReport,
        cursor: datetime | None,
    ) -> tuple[list[ToFire], bool]:
        """Record what of *stored* was missed; the occurrences of it to fire now
        (the tick fires them in batches, and firing moves the cursor), and
        whether its cursor moves to now once they are fired."""
        schedule = stored.definition
        since = cursor or stored.created_at
        due: list[ToFire] = []
        if schedule.enabled and since < now:
            grace = timedelta(seconds=schedules.seconds(schedule.grace))
            late, on_time = occurrence_runs.split_due(schedule_occurrences(schedule, since, now), now, grace)
            if late is not None and not self._missed(
                stored, late, on_time=on_time[0][0] if on_time else None, targets=targets, report=report
            ):
                return [], False  # another node is recording them: the next tick takes up what is left
            due = [
                (stored, self._firing(stored, index, at, targets, "schedule", advance_cursor=True))
                for at, index in on_time
            ]
        stale = cursor is None or not schedule.enabled or now - since >= CURSOR_REFRESH
        if stale and not due:
            # Firing moves the cursor (in the transaction that records the
            # occurrence: never past one not recorded yet); otherwise it moves
            # now and then, not at every tick: a write per schedule and tick
            # would load the database for nothing (the next look finds the same
            # occurrences). A disabled schedule's moves at every tick: what
            # falls due while it is disabled never fires once it is enabled again.
            with self.ws.db.session() as session:
                SchedulingRepository(session).advance_cursor(stored.id, now)
        return due, stale and bool(due)

    def _missed(
        self,
        stored: StoredSchedule,
        late: occurrence_runs.Late,
        *,
        on_time: datetime | None,
        targets: list[Target],
        report: TickReport,
    ) -> bool:
        """Record the late occurrences; False when another node recorded them."""
        recorded = occurrence_runs.record_missed(
            self.ws, self.runtime, stored, late, [c.name for _id, c in targets], catch_up=on_time is None,
            covered_by=on_time,
        )
        if recorded is None:
            return False
        report.missed += recorded.count
        self._event(report, recorded.reason)
        if recorded.caught_up:
            self._after_start(stored.definition.name, recorded.started, recorded.not_started, report)
        else:
            for line in recorded.not_started:
                self._event(report, line)
        return True

    def _fire(
        self,
        stored: StoredSchedule,
        index: int,
        at: datetime,
        targets: list[Target],
        kind: str,
        report: TickReport,
    ) -> None:
        self._fire_batch([(stored, self._firing(stored, index, at, targets, kind))], report)

    @staticmethod
    def _firing(
        stored: StoredSchedule,
        index: int,
        at: datetime,
        targets: list[Target],
        kind: str,
        *,
        advance_cursor: bool = False,
    ) -> occurrence_runs.Firing:
        schedule = stored.definition
        return occurrence_runs.Firing(
            occurrence_runs.Due(stored.id, schedule.name, index, at, "fired"),
            targets,
            trigger=kind,
            requested_by=f"schedule {schedule.name}",
            stop_after=schedules.as_timedelta(getattr(schedule.triggers[index], "stop_after", None)),
            advance_cursor=advance_cursor,
        )

    def _fire_batch(self, batch: list[ToFire], report: TickReport) -> set[int]:
        """Fire *batch* in one transaction, then report it and hand its running
        runs to the executor. When the batch is refused for a cause other than
        the database being away, each occurrence is fired alone, so the cause
        is reported against its schedule and the others still fire; the ids
        of the schedules whose occurrence could not be fired."""
        try:
            outcomes = occurrence_runs.fire_many(self.ws, self.runtime, [firing for _stored, firing in batch])
        except TransientError:
            raise
        except IdsyncError:
            if len(batch) == 1:
                raise
            failed: set[int] = set()
            for item in batch:
                try:
                    self._fire_batch([item], report)
                except TransientError:
                    raise
                except IdsyncError as exc:
                    failed.add(item[0].id)
                    self._event(report, f"schedule {item[0].definition.name!r}: {exc.message}")
            return failed
        running: list[tuple[int, int]] = []
        for (stored, firing), fired in zip(batch, outcomes, strict=True):
            if fired is None:
                continue  # another node (or an earlier tick) owns it
            due = firing.due
            report.fired += 1
            when = schedules.due_text(stored.definition, due.due_at, due.trigger_index)
            self._event(report, f"schedule {due.schedule_name!r} due at {when} "
                                f"(trigger {due.trigger_index + 1}, {firing.trigger})")
            self._after_start(due.schedule_name, fired.started, fired.not_started, report, hand_over=running)
        # At once: with workers, one round trip to the job queue for the batch.
        self.executor.submit_many(running)
        return set()

    def _after_start(
        self,
        schedule_name: str,
        started: list[Started],
        not_started: list[str],
        report: TickReport,
        *,
        hand_over: list[tuple[int, int]] | None = None,
    ) -> None:
        """Report what an occurrence started (committed by now) and hand its
        running runs to the executor, or add them to *hand_over* (run id,
        fence) for the caller to hand over at once."""
        if not started and not not_started:
            self._event(report, f"schedule {schedule_name!r} has no collection to start")
        for line in not_started:
            self._event(report, line)
        for outcome in started:
            self._started(outcome, report, hand_over)

    def _started(self, started: Started, report: TickReport, hand_over: list[tuple[int, int]] | None) -> None:
        if started.state is RunState.RUNNING:
            assert started.fence is not None
            report.started.append(started.run_id)
            self._event(report, f"run {started.run_id} of collection {started.collection!r} started")
            if hand_over is None:
                self.executor.submit(started.run_id, started.fence)
            else:
                hand_over.append((started.run_id, started.fence))
        elif started.state is RunState.QUEUED:
            report.queued.append(started.run_id)
            self._event(report, f"run {started.run_id} of collection {started.collection!r} queued ({started.reason})")
        else:
            report.skipped.append(started.run_id)
            self._event(report, f"run {started.run_id}: {started.reason}")

    # ------------------------------------------------------------ helpers

    def _targets(self) -> dict[str, list[Target]]:
        """The target collections of each schedule, read once per tick."""
        by_schedule: dict[str, list[Target]] = {}
        for collection_id, collection in collections.stored_collections(self.ws):
            if collection.schedule is not None:
                by_schedule.setdefault(collection.schedule, []).append((collection_id, collection))
        return by_schedule

    def _expire(self, report: TickReport) -> None:
        """End what dead processes left: runs whose lease ran out, the plans
        they were applying (ready again) or computing (failed), and previews
        whose lease ran out."""
        with self.ws.db.session() as session:
            lost = reaping.expire_lost_runs(self.ws, session, self.clock)
            plans = PlanRepository(session, clock=self.clock)
            plans.release_orphans()
            plans.fail_orphans()
            for plan_id in plans.expire_previews():
                self._event(report, f"plan {plan_id} failed: {PREVIEW_LOST}")
        for run_id in lost:
            self._event(report, f"run {run_id} failed: {NODE_LOST}")
        report.expired.extend(lost)

    def _event(self, report: TickReport, message: str) -> None:
        report.messages.append(message)
        log.info("%s", message)
        if self.on_event is not None:
            self.on_event(message)

    @staticmethod
    def _merge(into: TickReport, other: TickReport) -> None:
        into.fired += other.fired
        into.missed += other.missed
        into.started.extend(other.started)
        into.queued.extend(other.queued)
        into.skipped.extend(other.skipped)
        into.expired.extend(other.expired)
        into.messages.extend(other.messages)


TICK_OFFSET = 0.005
"""Seconds past a whole multiple of the tick at which a tick begins."""


def _until_next_tick(tick_seconds: float) -> float:
    """Seconds until the next tick: ticks begin just after whole multiples of
    *tick_seconds* of the wall clock, however long the last one took, so an
    occurrence due at a whole minute (as cron ones are) is seen milliseconds
    after it falls due, not up to a tick later; never back to back."""
    wait = tick_seconds - (time.time() % tick_seconds) + TICK_OFFSET
    return wait + tick_seconds if wait < tick_seconds / 10 else wait


def run_now(ws: Workspace, name: str, executor: Executor, runtime: Runtime) -> list[Started]:
    """Start every target collection of schedule *name* now (an occurrence
    with trigger index -1 records it, so ``schedule list`` shows it as the last run)."""
    schedule_id, schedule = schedules.load_schedule(ws, name)
    targets = collections.collections_using_schedule(ws, name)
    if not targets:
        raise StateConflictError(
            f"schedule {name!r} has no target collections", hint="give the schedule to a collection first"
        )

    fired = occurrence_runs.run_now(ws, runtime, schedule_id, schedule.name, [c.name for c in targets])
    for line in fired.not_started:
        log.warning("%s", line)
    for started in fired.started:
        if started.state is RunState.RUNNING:
            assert started.fence is not None
            executor.submit(started.run_id, started.fence)
    return fired.started
