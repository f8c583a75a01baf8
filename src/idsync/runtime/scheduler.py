"""The scheduler: every tick, record what is due and start it, exactly once.

For each enabled schedule, the tick looks at the occurrences of its
triggers between the schedule's cursor (how far it was looked at before)
and now, using :mod:`idsync.scheduling.triggers`:

- an occurrence due within the schedule's ``grace`` is inserted as a row
  unique on (schedule, trigger, due time); the node whose insert went in
  starts the schedule's target collections, through the executor;
- occurrences older than the grace (no scheduler was running) are recorded
  as *missed*, with one *missed* run per target saying how many and when;
  with the ``run_once`` misfire policy the targets then run once now,
  however many were missed (started by the node that recorded the latest);
- start-up triggers fire when the scheduler starts.

Every tick also marks failed the runs whose lease ran out (their node is
gone) and starts queued runs whose collection is free. The clock is
injected, so tests decide what time it is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from idsync.domain.collections import CollectionDefinition
from idsync.domain.results import RunState
from idsync.errors import IdsyncError, StateConflictError, TransientError
from idsync.runtime.executor import Executor
from idsync.scheduling.triggers import at_startup, occurrences
from idsync.services import collection_runs, collections, schedules
from idsync.services.collection_runs import Runtime, Started
from idsync.services.schedules import StoredSchedule
from idsync.services.workspace import Workspace
from idsync.store.plans_repo import PREVIEW_LOST, PlanRepository
from idsync.store.retry import Backoff
from idsync.store.scheduling_repo import NODE_LOST, SchedulingRepository

log = logging.getLogger(__name__)

RUN_NOW_TRIGGER = -1
"""The trigger index of occurrences recorded by "run now"."""

MISSED_ROWS = 1000
"""At most this many missed occurrences of one schedule are recorded as rows
per look (the latest ones); the missed run's reason gives the full count."""


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
    ) -> None:
        self.ws = ws
        self.executor = executor
        self.runtime = runtime
        self.on_event = on_event
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
        now = self.clock()
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
        now = self.clock()
        report = TickReport(now)
        self._expire(report)
        targets = self._targets()
        stored_schedules = schedules.stored_schedules(self.ws)
        self._fire_startup(stored_schedules, now, targets, report)
        for stored in stored_schedules:
            try:
                self._process(stored, now, targets.get(stored.definition.name, []), report)
            except TransientError:
                raise  # the database is away: the whole tick is tried again later
            except IdsyncError as exc:
                self._event(report, f"schedule {stored.definition.name!r}: {exc.message}")
        for started in collection_runs.promote_queued(self.ws, self.runtime):
            assert started.fence is not None
            self._event(report, f"run {started.run_id} of collection {started.collection!r} started from the queue")
            report.started.append(started.run_id)
            self.executor.submit(started.run_id, started.fence)
        return report

    def serve(self, stop: threading.Event, tick_seconds: float) -> None:
        """Start, then tick every *tick_seconds* until *stop* is set.

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
            stop.wait(wait)

    def shutdown(self, timeout: float) -> list[int]:
        """Stop the runs this node executes (at their next batch), wait up to
        *timeout* seconds, then mark whatever is still running here terminated;
        the ids of the runs marked so."""
        self.executor.shutdown(timeout)
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
        targets: dict[str, list[CollectionDefinition]],
        report: TickReport,
    ) -> None:
        """Fire the start-up triggers (and their repeats) now due."""
        due = [item for item in self._startup_repeats if item[0] <= now]
        self._startup_repeats = [item for item in self._startup_repeats if item[0] > now]
        by_id = {stored.id: stored for stored in stored_schedules}
        for at, schedule_id, index in sorted(due):
            stored = by_id.get(schedule_id)
            if stored is not None and stored.definition.enabled:
                self._fire(stored, index, at, targets.get(stored.definition.name, []), "startup", report)

    def _process(
        self, stored: StoredSchedule, now: datetime, targets: list[CollectionDefinition], report: TickReport
    ) -> None:
        schedule = stored.definition
        with self.ws.db.session() as session:
            cursor = SchedulingRepository(session).cursor(stored.id)
        since = cursor or stored.created_at
        if schedule.enabled and since < now:
            due = sorted(
                (at, index)
                for index, trigger in enumerate(schedule.triggers)
                if trigger.enabled and trigger.kind != "startup"
                for at in occurrences(trigger, since, now)
            )
            grace = timedelta(seconds=schedules.seconds(schedule.grace))
            missed = [(at, index) for at, index in due if now - at > grace]
            on_time = [(at, index) for at, index in due if now - at <= grace]
            if missed:
                self._missed(stored, missed, catch_up=not on_time, targets=targets, report=report)
            for at, index in on_time:
                self._fire(stored, index, at, targets, "schedule", report)
        with self.ws.db.session() as session:
            SchedulingRepository(session).advance_cursor(stored.id, now)

    def _missed(
        self,
        stored: StoredSchedule,
        missed: list[tuple[datetime, int]],
        *,
        catch_up: bool,
        targets: list[CollectionDefinition],
        report: TickReport,
    ) -> None:
        schedule = stored.definition
        total = len(missed)
        missed = missed[-MISSED_ROWS:]
        owned: list[tuple[int, datetime, int]] = []
        with self.ws.db.session() as session:
            repo = SchedulingRepository(session, clock=self.clock)
            for at, index in missed:
                occurrence = repo.insert_occurrence(
                    schedule_id=stored.id,
                    schedule_name=schedule.name,
                    trigger_index=index,
                    due_at=at,
                    state="missed",
                    node=self.runtime.node,
                )
                if occurrence is not None:
                    owned.append((occurrence, at, index))
        if not owned:
            return
        count = len(owned) + (total - len(missed) if owned[0][1] == missed[0][0] else 0)
        report.missed += count
        first, last = owned[0][1], owned[-1][1]
        span = f"at {_when(first)}" if count == 1 else f"between {_when(first)} and {_when(last)}"
        if count > len(owned):
            span = f"up to {_when(last)}"
        policy = "running once now" if schedule.misfire == "run_once" and catch_up else "not run"
        reason = (
            f"missed: {count} scheduled run(s) of schedule {schedule.name!r} {span} "
            f"(no scheduler was running; misfire: {schedule.misfire}, {policy})"
        )
        self._event(report, reason)
        for collection in targets:
            collection_runs.record_missed(self.ws, collection, owned[-1][0], reason, self.runtime)
        latest_is_mine = owned[-1][1] == missed[-1][0]
        if schedule.misfire == "run_once" and catch_up and latest_is_mine:
            trigger = schedule.triggers[owned[-1][2]]
            self._start_targets(schedule.name, targets, owned[-1][0], "misfire", trigger, report)

    def _fire(
        self,
        stored: StoredSchedule,
        index: int,
        at: datetime,
        targets: list[CollectionDefinition],
        kind: str,
        report: TickReport,
    ) -> None:
        schedule = stored.definition
        with self.ws.db.session() as session:
            occurrence = SchedulingRepository(session, clock=self.clock).insert_occurrence(
                schedule_id=stored.id,
                schedule_name=schedule.name,
                trigger_index=index,
                due_at=at,
                state="fired",
                node=self.runtime.node,
            )
        if occurrence is None:
            return  # another node (or an earlier tick) owns it
        report.fired += 1
        self._event(report, f"schedule {schedule.name!r} due at {_when(at)} (trigger {index + 1}, {kind})")
        self._start_targets(schedule.name, targets, occurrence, kind, schedule.triggers[index], report)

    def _start_targets(
        self,
        schedule_name: str,
        targets: list[CollectionDefinition],
        occurrence: int,
        kind: str,
        trigger: Any,
        report: TickReport,
    ) -> None:
        if not targets:
            self._event(report, f"schedule {schedule_name!r} has no collection to start")
        for collection in targets:
            try:
                started = collection_runs.start_run(
                    self.ws,
                    collection.name,
                    self.runtime,
                    trigger=kind,
                    requested_by=f"schedule {schedule_name}",
                    occurrence_id=occurrence,
                    stop_after=schedules.as_timedelta(getattr(trigger, "stop_after", None)),
                )
            except IdsyncError as exc:
                self._event(report, f"collection {collection.name!r} not started: {exc.message}")
                continue
            self._started(started, report)

    def _started(self, started: Started, report: TickReport) -> None:
        if started.state is RunState.RUNNING:
            assert started.fence is not None
            report.started.append(started.run_id)
            self._event(report, f"run {started.run_id} of collection {started.collection!r} started")
            self.executor.submit(started.run_id, started.fence)
        elif started.state is RunState.QUEUED:
            report.queued.append(started.run_id)
            self._event(report, f"run {started.run_id} of collection {started.collection!r} queued ({started.reason})")
        else:
            report.skipped.append(started.run_id)
            self._event(report, f"run {started.run_id}: {started.reason}")

    # ------------------------------------------------------------ helpers

    def _targets(self) -> dict[str, list[CollectionDefinition]]:
        by_schedule: dict[str, list[CollectionDefinition]] = {}
        for collection in collections.list_collections(self.ws):
            if collection.schedule is not None:
                by_schedule.setdefault(collection.schedule, []).append(collection)
        return by_schedule

    def _expire(self, report: TickReport) -> None:
        """End what dead processes left: runs whose lease ran out, the plans
        they were applying (ready again) or computing (failed), and previews
        whose lease ran out."""
        with self.ws.db.session() as session:
            lost = SchedulingRepository(session, clock=self.clock).expire_leases()
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


def run_now(ws: Workspace, name: str, executor: Executor, runtime: Runtime) -> list[Started]:
    """Start every target collection of schedule *name* now (an occurrence
    with trigger index -1 records it, so ``schedule list`` shows it as the last run)."""
    schedule_id, schedule = schedules.load_schedule(ws, name)
    targets = collections.collections_using_schedule(ws, name)
    if not targets:
        raise StateConflictError(
            f"schedule {name!r} has no target collections", hint="give the schedule to a collection first"
        )
    with ws.db.session() as session:
        occurrence = SchedulingRepository(session, clock=runtime.clock).insert_occurrence(
            schedule_id=schedule_id,
            schedule_name=schedule.name,
            trigger_index=RUN_NOW_TRIGGER,
            due_at=runtime.clock(),
            state="run-now",
            node=runtime.node,
        )
    out = []
    for collection in targets:
        started = collection_runs.start_run(
            ws, collection.name, runtime, trigger="run-now", occurrence_id=occurrence
        )
        if started.state is RunState.RUNNING:
            assert started.fence is not None
            executor.submit(started.run_id, started.fence)
        out.append(started)
    return out


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")
