"""A tick finding many schedules due at once fires them a batch at a time:
each occurrence still once, with its run, audited on one intact chain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from idsync.domain.results import RunState
from idsync.errors import ConfigError
from idsync.runtime import scheduler as scheduler_module
from idsync.store.audit import verify_trails
from idsync.store.scheduling_repo import SchedulingRepository
from tests.scheduler_world import World, make_world, wall
from tests.unit.conftest import copy_migrated
from tests.unit.test_scheduler import collection_runs, scheduler, start_clock

NAMES = [f"s{n}" for n in range(5)]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite: Path) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(scheduler_module, "FIRE_BATCH", 2)  # 5 due at once: batches of 2, 2 and 1
    copy_migrated(migrated_sqlite, tmp_path / "idsync.db")
    made = make_world(tmp_path)
    yield made
    made.ws.close()


def due_together(world: World) -> Any:
    clock = start_clock()
    due = clock.now + timedelta(minutes=1)
    for name in NAMES:
        world.collection(f"c-{name}", ["people"], schedule=name)
        world.schedule(name, [{"kind": "once", "start": wall(due)}])
    clock.now = due
    return clock


def test_schedules_due_at_once_fire_in_batches_each_once_and_audited(world: World) -> None:
    clock = due_together(world)
    report = scheduler(world, clock).tick()
    assert (report.fired, report.missed, len(report.started)) == (5, 0, 5)
    for name in NAMES:
        assert [(r.state, r.trigger) for r in collection_runs(world, f"c-{name}")] == [
            (RunState.SUCCEEDED, "schedule")
        ]
    # Another node (and the next tick) finds every occurrence recorded.
    assert scheduler(world, clock, node="node-b").tick().fired == 0
    clock.advance(60)
    assert scheduler(world, clock).tick().fired == 0
    with world.ws.db.session() as session:
        trails = verify_trails(session)
        cursors = SchedulingRepository(session).cursors()
    assert all(trail.intact for trail in trails.values())
    assert len(cursors) == len(NAMES) and all(at >= clock.now - timedelta(seconds=60) for at in cursors.values())
    started = [line for line in report.messages if "due at" in line]
    assert sorted(line.split("'")[1] for line in started) == NAMES


def test_a_batch_refused_by_one_schedule_fires_the_others_and_names_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = due_together(world)
    insert = SchedulingRepository.insert_occurrences

    def refuses_s2(self: SchedulingRepository, wanted: Any, **options: Any) -> Any:
        if any(name == "s2" for _id, name, _index, _due in wanted):
            raise ConfigError("schedule 's2' cannot be recorded")
        return insert(self, wanted, **options)

    with monkeypatch.context() as patch:
        patch.setattr(SchedulingRepository, "insert_occurrences", refuses_s2)
        report = scheduler(world, clock).tick()
    assert report.fired == 4
    assert "schedule 's2': schedule 's2' cannot be recorded" in report.messages
    assert collection_runs(world, "c-s2") == []
    assert all(len(collection_runs(world, f"c-{name}")) == 1 for name in NAMES if name != "s2")
    # Its cursor did not move past the occurrence: the next tick fires it.
    again = scheduler(world, clock).tick()
    assert again.fired == 1
    assert [r.state for r in collection_runs(world, "c-s2")] == [RunState.SUCCEEDED]


def test_a_collection_still_running_is_skipped_and_the_rest_of_its_batch_runs(world: World) -> None:
    from idsync.services import collection_runs as runs_service
    from idsync.services.collection_runs import Runtime

    clock = due_together(world)
    held = runs_service.start_run(world.ws, "c-s0", Runtime(node="elsewhere", lease=timedelta(days=2)))
    assert held.state is RunState.RUNNING
    report = scheduler(world, clock).tick()
    assert report.fired == 5 and len(report.started) == 4 and len(report.skipped) == 1
    skipped = collection_runs(world, "c-s0")[-1]
    assert skipped.state is RunState.SKIPPED and "still running" in (skipped.error or "")
    for name in NAMES[1:]:
        assert [r.state for r in collection_runs(world, f"c-{name}")] == [RunState.SUCCEEDED]
    with world.ws.db.session() as session:
        assert all(trail.intact for trail in verify_trails(session).values())


def test_ticks_begin_just_after_whole_multiples_of_the_tick_never_back_to_back() -> None:
    import time

    for tick in (1.0, 0.25, 5.0):
        wait = scheduler_module._until_next_tick(tick)
        at = time.time() + wait
        assert tick / 10 <= wait <= tick * 1.1 + scheduler_module.TICK_OFFSET
        assert (at % tick) == pytest.approx(scheduler_module.TICK_OFFSET, abs=0.02)
