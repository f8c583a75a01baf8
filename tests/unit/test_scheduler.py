"""The scheduler with a controlled clock, on a real SQLite file and embedded directory.

The clock is the test's: it starts at the real time (the schedules were
created just before, at the real time) and is moved by hand, so "a day
later" takes no time at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from idsync.domain.results import RunState
from idsync.errors import ConfigError, StateConflictError, TransientError
from idsync.runtime.executor import InlineExecutor, ThreadExecutor
from idsync.runtime.scheduler import Scheduler, run_now
from idsync.services import schedules
from idsync.services.collection_runs import Runtime
from idsync.store.plans_repo import PREVIEW_LOST, PlanRepository
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.store.scheduling_repo import NODE_LOST, SchedulingRepository
from tests.clock import Clock
from tests.scheduler_world import World, make_world, wall
from tests.unit.conftest import copy_migrated


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite: Path) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    copy_migrated(migrated_sqlite, tmp_path / "idsync.db")  # where make_world keeps its database
    made = make_world(tmp_path)
    yield made
    made.ws.close()


def start_clock() -> Clock:
    """A clock at the real time, a second ahead of anything created before it."""
    return Clock(datetime.now(UTC) + timedelta(seconds=1))


def scheduler(world: World, clock: Clock, *, node: str = "node-a", threads: bool = False) -> Scheduler:
    # A lease longer than any jump of the clock: heartbeats beat in real time.
    runtime = Runtime(node=node, clock=clock, lease=timedelta(days=2))
    executor = ThreadExecutor(world.ws, runtime) if threads else InlineExecutor(world.ws, runtime)
    return Scheduler(world.ws, executor, runtime)


def collection_runs(world: World, name: str = "c") -> list[RunRow]:
    with world.ws.db.session() as session:
        return sorted(RunRepository(session).list(collection_name=name, kind="collection"), key=lambda r: r.id)


def hourly_at_half_past(clock: Clock) -> str:
    """A cron expression due once an hour, half an hour away from the clock's minute."""
    return f"{(clock.now.minute + 30) % 60} * * * *"


# ---------------------------------------------------------------- misfires


def test_a_scheduler_down_for_a_day_records_the_misses_and_runs_once(world: World) -> None:
    world.collection("c", ["people"], schedule="hourly")
    clock = start_clock()
    world.schedule("hourly", [{"kind": "cron", "expression": hourly_at_half_past(clock), "start": wall(clock.now)}], grace="10m")
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    first = scheduler(world, clock).start()
    assert (first.fired, first.missed, first.started) == (0, 0, [])

    clock.advance(24 * 3600 + 20 * 60)  # down for a day
    report = scheduler(world, clock, node="node-b").start()
    assert report.missed == 24 and report.fired == 0
    runs = collection_runs(world)
    assert [r.state for r in runs] == [RunState.MISSED, RunState.SUCCEEDED]
    assert "missed: 24 scheduled run(s) of schedule 'hourly'" in (runs[0].error or "")
    assert "misfire: run_once, running once now" in (runs[0].error or "")
    assert runs[1].trigger == "misfire" and report.started == [runs[1].id]
    with world.ws.db.session() as session:
        recorded = SchedulingRepository(session).occurrences("hourly", limit=100)
    # Recorded compactly: the first and the last missed occurrence, the run naming all 24.
    assert [o.state for o in recorded] == ["missed", "missed"]
    assert recorded[0].due_at - recorded[1].due_at == timedelta(hours=23)
    assert runs[0].occurrence_id == runs[1].occurrence_id == recorded[0].id

    # Nothing is missed or run twice: the next tick finds nothing new.
    again = scheduler(world, clock, node="node-b").tick()
    assert (again.fired, again.missed, again.started) == (0, 0, [])


def test_a_trigger_every_minute_down_for_days_runs_once_and_records_two_rows(world: World) -> None:
    # The most a trigger may run: every minute, all day. Three days down (and
    # the hour of grace before now full of occurrences on time) is ~4,300 of them.
    world.collection("c", ["people"], schedule="busy")
    clock = start_clock()
    start = wall(clock.now + timedelta(seconds=1))
    world.schedule("busy", [{"kind": "daily", "start": start, "repeat_every": "1m", "repeat_for": "1d"}])
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    scheduler(world, clock).start()
    clock.advance(3 * 86400 + 30)

    report = scheduler(world, clock, node="node-b").start()
    # 4,321 minutes from the start to now, the first and the last included: the last runs.
    assert (report.fired, report.missed) == (1, 3 * 1440)
    runs = collection_runs(world)
    assert [(r.state, r.trigger) for r in runs] == [(RunState.MISSED, "schedule"), (RunState.SUCCEEDED, "schedule")]
    assert "missed: 4320 scheduled run(s) of schedule 'busy' between " in (runs[0].error or "")
    assert "(no scheduler was running; misfire: run_once, the run due at " in (runs[0].error or "")
    with world.ws.db.session() as session:
        recorded = SchedulingRepository(session).occurrences("busy", limit=100)
    assert sorted(o.state for o in recorded) == ["fired", "missed", "missed"]
    again = scheduler(world, clock, node="node-b").tick()
    assert (again.fired, again.missed, again.started) == (0, 0, [])


def test_occurrences_within_the_grace_found_at_once_run_once(world: World) -> None:
    # Down for 30 minutes with a grace of an hour: 30 occurrences are on time,
    # but starting the collection 30 times in a burst runs it once and skips
    # it 29 times at best; the latest runs, the others are recorded as missed.
    world.collection("c", ["people"], schedule="minutely")
    clock = start_clock()
    every_minute(world, clock)
    engine = scheduler(world, clock)
    engine.start()
    first = (clock.now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    clock.now = first + timedelta(minutes=29, seconds=30)  # 30 occurrences due, the first 29.5 minutes ago
    report = engine.tick()
    assert (report.fired, report.missed, len(report.started)) == (1, 29, 1)
    runs = collection_runs(world)
    assert [r.state for r in runs] == [RunState.MISSED, RunState.SUCCEEDED]
    assert "missed: 29 scheduled run(s) of schedule 'minutely'" in (runs[0].error or "")
    assert engine.tick().fired == 0


def test_the_same_late_occurrences_are_recorded_by_one_node(world: World) -> None:
    # Two nodes looking at the same span at the same time: the row of the
    # first missed occurrence goes in for one of them only.
    from idsync.services import occurrence_runs

    world.collection("c", ["people"], schedule="hourly")
    clock = start_clock()
    world.schedule("hourly", [{"kind": "cron", "expression": "0 * * * *", "start": wall(clock.now)}])
    [stored] = schedules.stored_schedules(world.ws)
    first = clock.now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    late = occurrence_runs.Late(5, (first, 0), (first + timedelta(hours=4), 0))
    recorded = [
        occurrence_runs.record_missed(
            world.ws, Runtime(node=node, clock=clock), stored, late, ["c"], catch_up=True
        )
        for node in ("node-a", "node-b")
    ]
    assert recorded[0] is not None and recorded[0].count == 5 and len(recorded[0].started) == 1
    assert recorded[1] is None
    # One missed run, and one run started (claimed for node-a's executor).
    assert [r.state for r in collection_runs(world)] == [RunState.MISSED, RunState.RUNNING]
    with world.ws.db.session() as session:
        assert SchedulingRepository(session).cursor(stored.id) == late.last[0]


def test_an_occurrence_run_on_time_is_never_taken_for_a_missed_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tick fires the occurrence, then cannot move the cursor (the database
    # went away): the cursor moved with the occurrence, so a later look does
    # not record it as missed, nor run the collection again to catch up.
    world.collection("c", ["people"], schedule="soon")
    clock = start_clock()
    due = clock.now + timedelta(minutes=5)
    world.schedule("soon", [{"kind": "once", "start": wall(due)}], grace="30m")
    engine = scheduler(world, clock)
    engine.start()
    clock.now = due + timedelta(minutes=1)
    advance = SchedulingRepository.advance_cursor

    def fails_at_the_end(self: SchedulingRepository, schedule_id: int, to: datetime) -> None:
        if to == clock.now:
            raise TransientError("database unreachable")
        advance(self, schedule_id, to)

    with monkeypatch.context() as patch:
        patch.setattr(SchedulingRepository, "advance_cursor", fails_at_the_end)
        # The tick stops at the transient error (the loop retries it with backoff).
        with pytest.raises(TransientError, match="database unreachable"):
            engine.tick()
    assert [r.state for r in collection_runs(world)] == [RunState.SUCCEEDED]
    clock.now = due + timedelta(hours=2)
    report = engine.tick()
    assert (report.fired, report.missed, report.started) == (0, 0, [])
    assert [r.state for r in collection_runs(world)] == [RunState.SUCCEEDED]


def test_what_runs_on_time_and_what_is_summed_up_as_missed() -> None:
    from idsync.services.occurrence_runs import Late, split_due

    now, grace = datetime(2027, 1, 1, 12, 0, tzinfo=UTC), timedelta(hours=1)

    def at(minutes_ago: int) -> datetime:
        return now - timedelta(minutes=minutes_ago)

    assert split_due([], now, grace) == (None, [])
    assert split_due([(at(90), 0), (at(75), 0)], now, grace) == (Late(2, (at(90), 0), (at(75), 0)), [])
    # on time: only the latest instant runs, each trigger due then (they coincide)
    assert split_due([(at(90), 1), (at(30), 0), (at(10), 0), (at(10), 1)], now, grace) == (
        Late(2, (at(90), 1), (at(30), 0)), [(at(10), 0), (at(10), 1)]
    )
    assert split_due(((at(m), 0) for m in range(59, -1, -1)), now, grace) == (Late(59, (at(59), 0), (at(1), 0)), [(at(0), 0)])


def test_a_repeat_every_second_for_100000_days_is_refused_when_saved(world: World) -> None:
    with pytest.raises(ConfigError, match=r"triggers\.0\.daily\.repeat_every: repeat_every 1s is too short"):
        world.schedule(
            "flood", [{"kind": "daily", "start": "2027-01-01T00:00", "repeat_every": "1s", "repeat_for": "100000d"}]
        )
    assert schedules.stored_schedules(world.ws) == []


def test_with_misfire_skip_the_misses_are_only_recorded(world: World) -> None:
    world.collection("c", ["people"], schedule="hourly")
    clock = start_clock()
    world.schedule(
        "hourly",
        [{"kind": "cron", "expression": hourly_at_half_past(clock), "start": wall(clock.now)}],
        grace="10m",
        misfire="skip",
    )
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    scheduler(world, clock).start()
    clock.advance(24 * 3600 + 20 * 60)
    report = scheduler(world, clock).tick()
    assert report.missed == 24 and report.started == []
    runs = collection_runs(world)
    assert [r.state for r in runs] == [RunState.MISSED]
    assert "misfire: skip, not run" in (runs[0].error or "")


def test_an_occurrence_late_within_the_grace_runs_as_scheduled(world: World) -> None:
    world.collection("c", ["people"], schedule="soon")
    clock = start_clock()
    due = clock.now + timedelta(minutes=5)
    world.schedule("soon", [{"kind": "once", "start": wall(due)}], grace="30m")
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    engine = scheduler(world, clock)
    assert engine.start().fired == 0
    clock.now = due + timedelta(minutes=20)
    report = engine.tick()
    assert (report.fired, report.missed) == (1, 0)
    runs = collection_runs(world)
    assert [(r.state, r.trigger) for r in runs] == [(RunState.SUCCEEDED, "schedule")]
    assert engine.tick().fired == 0


def test_two_schedulers_never_start_the_same_occurrence_twice(world: World) -> None:
    world.collection("c", ["people"], schedule="soon")
    clock = start_clock()
    due = clock.now + timedelta(minutes=1)
    world.schedule("soon", [{"kind": "once", "start": wall(due)}])
    clock.now = due
    reports = [scheduler(world, clock, node=f"node-{n}").tick() for n in "abc"]
    assert [r.fired for r in reports] == [1, 0, 0]
    assert len(collection_runs(world)) == 1


def test_startup_triggers_fire_when_the_scheduler_starts(world: World) -> None:
    world.collection("c", ["people"], schedule="boot")
    world.schedule("boot", [{"kind": "startup"}])
    clock = start_clock()
    engine = scheduler(world, clock)
    assert engine.start().fired == 1
    clock.advance(3600)
    assert engine.tick().fired == 0
    assert [r.trigger for r in collection_runs(world)] == ["startup"]


def test_start_up_repeats_due_at_once_run_once(world: World) -> None:
    world.collection("c", ["people"], schedule="boot")
    world.schedule("boot", [{"kind": "startup", "repeat_every": "1m", "repeat_for": "1h"}])
    clock = start_clock()
    engine = scheduler(world, clock)
    assert engine.start().fired == 1
    clock.advance(30 * 60 + 30)  # the ticks fell behind by 30 repeats
    assert engine.tick().fired == 1
    clock.advance(60)
    assert engine.tick().fired == 1
    assert [r.trigger for r in collection_runs(world)] == ["startup"] * 3


def test_a_disabled_schedule_fires_nothing_and_misses_nothing(world: World) -> None:
    world.collection("c", ["people"], schedule="daily")
    clock = start_clock()
    world.schedule("daily", [{"kind": "daily", "start": wall(clock.now + timedelta(hours=1))}])
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    engine = scheduler(world, clock)
    engine.start()
    schedules.set_enabled(world.ws, "daily", False, clock=clock)
    clock.advance(3 * 86400)
    assert engine.tick().fired == 0
    schedules.set_enabled(world.ws, "daily", True, clock=clock)
    report = engine.tick()
    assert (report.fired, report.missed) == (0, 0)
    assert collection_runs(world) == []


def test_run_now_starts_every_target_and_shows_as_the_last_run(world: World) -> None:
    world.csv_job("more", ["3,Grace,Hopper"])
    world.collection("c", ["people"], schedule="weekly")
    world.collection("d", ["more"], schedule="weekly")
    world.schedule("weekly", [{"kind": "weekly", "weekdays": ["mon"], "start": "2030-01-07T09:00"}])
    clock = start_clock()
    runtime = Runtime(node="node-a", clock=clock)
    started = run_now(world.ws, "weekly", InlineExecutor(world.ws, runtime), runtime)
    assert [s.collection for s in started] == ["c", "d"]
    assert [r.state for r in collection_runs(world, "c") + collection_runs(world, "d")] == [RunState.SUCCEEDED] * 2
    status = {s.name: s for s in schedules.status(world.ws, now=clock.now)}["weekly"]
    assert status.targets == ["c", "d"] and status.last_state == "succeeded"
    assert status.next_run == datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def test_run_now_of_a_schedule_without_targets_is_a_state_conflict(world: World) -> None:
    world.schedule("weekly", [{"kind": "weekly", "weekdays": ["mon"], "start": "2030-01-07T09:00"}])
    runtime = Runtime(node="node-a", clock=start_clock())
    with pytest.raises(StateConflictError, match=r"^schedule 'weekly' has no target collections$") as caught:
        run_now(world.ws, "weekly", InlineExecutor(world.ws, runtime), runtime)
    assert caught.value.hint == "give the schedule to a collection first"


# ---------------------------------------------------------------- leases


def test_a_run_whose_lease_expired_is_marked_failed_with_its_job_runs(world: World) -> None:
    world.collection("c", ["people"])
    clock = start_clock()
    dead = Runtime(node="dead-node", clock=clock, lease=timedelta(seconds=30))
    from idsync.services import collection_runs as runs_service

    started = runs_service.start_run(world.ws, "c", dead)
    with world.ws.db.session() as session:
        repo = RunRepository(session)
        child = repo.create(job_name="people", job_id=None, parent_run_id=started.run_id, collection_name="c")
        repo.start(child)
    engine = scheduler(world, clock)
    clock.advance(29)
    assert engine.tick().expired == []
    clock.advance(2)
    assert engine.tick().expired == [started.run_id]
    with world.ws.db.session() as session:
        repo = RunRepository(session)
        run, job = repo.require(started.run_id), repo.require(child)
    assert (run.state, run.error) == (RunState.FAILED, NODE_LOST)
    assert (job.state, job.error) == (RunState.FAILED, NODE_LOST)
    assert run.fence == (started.fence or 0) + 1


# ---------------------------------------------------------------- overlap, stop_after, shutdown


def every_minute(world: World, clock: Clock, **settings: object) -> None:
    # Starting a second on (the start is in whole seconds): were the clock at
    # hh:mm:00.3, a start of hh:mm:00 would be due at once, not a minute on.
    start = wall(clock.now + timedelta(seconds=1))
    world.schedule("minutely", [{"kind": "cron", "expression": "* * * * *", "start": start}], **settings)


def test_a_run_outlasting_its_interval_never_runs_twice_skip(world: World) -> None:
    gate = world.gated_job("slow", ["7,Edsger,Dijkstra"])
    world.collection("c", ["slow"], schedule="minutely")
    clock = start_clock()
    every_minute(world, clock)
    engine = scheduler(world, clock, threads=True)
    gate.serve()
    engine.start()
    clock.advance(60)
    first = engine.tick()
    assert len(first.started) == 1
    gate.wait_reading()
    clock.advance(60)
    second = engine.tick()
    assert second.started == [] and len(second.skipped) == 1
    gate.open()
    assert engine.executor.wait(20)  # type: ignore[attr-defined]
    runs = collection_runs(world)
    assert [r.state for r in runs] == [RunState.SUCCEEDED, RunState.SKIPPED]
    assert runs[1].error == f"skipped: collection 'c' was still running (run {runs[0].id}; overlap: skip)"
    assert gate.reads == 1


def test_a_run_outlasting_its_interval_never_runs_twice_queue(world: World) -> None:
    gate = world.gated_job("slow", ["7,Edsger,Dijkstra"])
    world.collection("c", ["slow"], schedule="minutely", overlap="queue")
    clock = start_clock()
    every_minute(world, clock)
    engine = scheduler(world, clock, threads=True)
    gate.serve(times=2)
    engine.start()
    clock.advance(60)
    assert len(engine.tick().started) == 1
    gate.wait_reading()
    clock.advance(60)
    assert len(engine.tick().queued) == 1
    clock.advance(60)
    assert len(engine.tick().skipped) == 1
    gate.open()
    assert engine.executor.wait(20)  # type: ignore[attr-defined]
    runs = collection_runs(world)
    assert [r.state for r in runs] == [RunState.SUCCEEDED, RunState.SUCCEEDED, RunState.SKIPPED]
    assert "already waits in its queue" in (runs[2].error or "")
    assert gate.reads == 2
    assert runs[1].started_at is not None and runs[0].finished_at is not None
    assert runs[1].started_at >= runs[0].finished_at


def test_stop_after_stops_a_run_at_its_next_batch(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_BATCH_SIZE", "1")
    gate = world.gated_job("slow", [f"{n},First{n},Last{n}" for n in range(10, 30)])
    world.collection("c", ["slow"], schedule="soon")
    clock = start_clock()
    world.schedule("soon", [{"kind": "once", "start": wall(clock.now + timedelta(minutes=1)), "stop_after": "30m"}])
    engine = scheduler(world, clock, threads=True)
    gate.serve()
    engine.start()
    clock.advance(61)
    assert len(engine.tick().started) == 1
    gate.wait_reading()
    clock.advance(31 * 60)
    gate.open()
    assert engine.executor.wait(20)  # type: ignore[attr-defined]
    run = collection_runs(world)[0]
    assert run.state is RunState.TERMINATED
    assert run.error == "stopped: ran longer than its limit of 30m (stop_after)"
    with world.ws.db.session() as session:
        jobs = RunRepository(session).children(run.id)
    assert [(j.state, j.error) for j in jobs] == [(RunState.TERMINATED, run.error)]
    assert jobs[0].counts.read < 20


def test_shutdown_leaves_no_run_marked_running(world: World) -> None:
    gate = world.gated_job("slow", ["7,Edsger,Dijkstra"])
    world.collection("c", ["slow"], schedule="boot")
    world.schedule("boot", [{"kind": "startup"}])
    clock = start_clock()
    engine = scheduler(world, clock, threads=True)
    gate.serve()
    assert len(engine.start().started) == 1
    gate.wait_reading()
    # The run waits on its source and cannot stop by itself within the timeout.
    marked = engine.shutdown(0.2)
    run = collection_runs(world)[0]
    assert marked == [run.id]
    assert (run.state, run.error) == (RunState.TERMINATED, "terminated: the scheduler was shut down")
    gate.open()
    assert engine.executor.wait(20)  # type: ignore[attr-defined]
    # The run's own late result does not overwrite the shutdown's.
    assert collection_runs(world)[0].state is RunState.TERMINATED


def test_a_tick_fails_a_preview_whose_lease_ran_out(world: World) -> None:
    clock = start_clock()
    with world.ws.db.session() as session:
        plan_id = PlanRepository(session, clock=clock).create(
            job_name="people", job_id=None, node="dead-node", lease=timedelta(seconds=30)
        )
    engine = scheduler(world, clock)
    clock.advance(29)
    assert f"plan {plan_id} failed" not in " ".join(engine.tick().messages)
    clock.advance(2)
    assert f"plan {plan_id} failed: {PREVIEW_LOST}" in engine.tick().messages
    with world.ws.db.session() as session:
        plan = PlanRepository(session).require(plan_id)
    assert (plan.state, plan.error) == ("failed", PREVIEW_LOST)


def test_a_stored_schedule_no_longer_accepted_is_skipped_and_the_others_fire(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import update

    from idsync.store.tables import schedules as schedules_table

    world.collection("c", ["people"], schedule="soon")
    world.collection("d", ["people"], schedule="old")
    clock = start_clock()
    due = clock.now + timedelta(minutes=5)
    world.schedule("soon", [{"kind": "once", "start": wall(due)}], grace="30m")
    world.schedule("old", [{"kind": "once", "start": wall(due)}], grace="30m")
    # Saved by a version with other rules: a repeat every second, refused today.
    with world.ws.db.session() as session:
        session.execute(
            update(schedules_table)
            .where(schedules_table.c.name == "old")
            .values(body={"name": "old", "triggers": [
                {"kind": "once", "start": wall(due), "repeat_every": 1, "repeat_for": 3600}
            ]})
        )
    engine = scheduler(world, clock)
    engine.start()
    clock.now = due + timedelta(minutes=1)
    assert engine.tick().fired == 1
    assert [r.state for r in collection_runs(world, "c")] == [RunState.SUCCEEDED]
    assert collection_runs(world, "d") == []
    assert engine.tick().fired == 0
    assert caplog.text.count("schedule 'old' does not fire until it is saved again") == 1
