"""An occurrence and the runs it starts are committed together, or not at all.

A failure between recording an occurrence and creating its runs (here the
database refusing the run's row, as when it goes away for a moment) must
not leave an occurrence without runs: the next tick would take it as done,
and the scheduled run would be lost without a trace. The scheduler runs
with a controlled clock on a real SQLite file and embedded directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from idsync.domain.results import RunState
from idsync.errors import TransientError
from idsync.runtime.executor import InlineExecutor
from idsync.runtime.scheduler import Scheduler, run_now
from idsync.services.collection_runs import Runtime
from idsync.store.collections_repo import CollectionRunRepository
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.store.scheduling_repo import Occurrence, SchedulingRepository
from tests.clock import Clock
from tests.scheduler_world import World, wall


def start_clock() -> Clock:
    return Clock(datetime.now(UTC) + timedelta(seconds=1))


def scheduler(world: World, clock: Clock, *, node: str = "node-a") -> Scheduler:
    runtime = Runtime(node=node, clock=clock, lease=timedelta(days=2))
    return Scheduler(world.ws, InlineExecutor(world.ws, runtime), runtime)


def runs_of(world: World) -> list[RunRow]:
    with world.ws.db.session() as session:
        return sorted(RunRepository(session).list(kind="collection"), key=lambda r: r.id)


def occurrences(world: World, schedule: str) -> list[Occurrence]:
    with world.ws.db.session() as session:
        return sorted(SchedulingRepository(session).occurrences(schedule, limit=100), key=lambda o: o.id)


@contextmanager
def run_rows_refused(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within the block, writing a collection run's row fails as a lost database does."""

    def refuse(self: CollectionRunRepository, **_values: Any) -> int:
        raise TransientError("database unreachable: server closed the connection unexpectedly")

    with monkeypatch.context() as patch:
        patch.setattr(CollectionRunRepository, "create", refuse)
        yield


def test_an_occurrence_whose_runs_could_not_be_written_is_not_recorded_and_fires_next_tick(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.collection("c", ["people"], schedule="soon")
    clock = start_clock()
    due = clock.now + timedelta(minutes=5)
    world.schedule("soon", [{"kind": "once", "start": wall(due)}], grace="30m")
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    engine = scheduler(world, clock)
    engine.start()
    clock.now = due + timedelta(minutes=1)
    with run_rows_refused(monkeypatch), pytest.raises(TransientError, match="database unreachable"):
        engine.tick()  # the tick stops at the transient error (the loop retries it with backoff)
    assert occurrences(world, "soon") == [] and runs_of(world) == []

    again = engine.tick()
    assert (again.fired, len(again.started)) == (1, 1)
    [occurrence] = occurrences(world, "soon")
    [run] = runs_of(world)
    assert (run.state, run.trigger, run.occurrence_id) == (RunState.SUCCEEDED, "schedule", occurrence.id)
    assert engine.tick().fired == 0


def test_missed_occurrences_whose_runs_could_not_be_written_are_recorded_by_the_next_tick(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.collection("c", ["people"], schedule="hourly")
    clock = start_clock()
    minute = (clock.now.minute + 30) % 60
    world.schedule("hourly", [{"kind": "cron", "expression": f"{minute} * * * *", "start": wall(clock.now)}], grace="10m")
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    scheduler(world, clock).start()
    clock.advance(6 * 3600 + 20 * 60)  # down for six hours
    engine = scheduler(world, clock, node="node-b")
    with run_rows_refused(monkeypatch), pytest.raises(TransientError, match="database unreachable"):
        engine.tick()
    assert occurrences(world, "hourly") == [] and runs_of(world) == []

    report = engine.tick()
    assert report.missed == 6 and len(report.started) == 1
    assert [o.state for o in occurrences(world, "hourly")] == ["missed", "missed"]  # the first and the last
    missed, caught_up = runs_of(world)
    assert missed.state is RunState.MISSED and "missed: 6 scheduled run(s)" in (missed.error or "")
    assert (caught_up.state, caught_up.trigger) == (RunState.SUCCEEDED, "misfire")


def test_run_now_whose_runs_could_not_be_written_records_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.collection("c", ["people"], schedule="weekly")
    world.schedule("weekly", [{"kind": "weekly", "weekdays": ["mon"], "start": "2030-01-07T09:00"}])
    runtime = Runtime(node="node-a", clock=start_clock())
    with run_rows_refused(monkeypatch), pytest.raises(TransientError, match="database unreachable"):
        run_now(world.ws, "weekly", InlineExecutor(world.ws, runtime), runtime)
    assert occurrences(world, "weekly") == [] and runs_of(world) == []

    [started] = run_now(world.ws, "weekly", InlineExecutor(world.ws, runtime), runtime)
    [occurrence] = occurrences(world, "weekly")
    [run] = runs_of(world)
    assert (run.id, run.state, run.trigger, run.occurrence_id) == (
        started.run_id, RunState.SUCCEEDED, "run-now", occurrence.id
    )
