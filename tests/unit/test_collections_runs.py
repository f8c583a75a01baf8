"""Collections on a real SQLite file and embedded directory: checks, runs, abort
and continue, reordering, preview, terminate and the overlap rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.domain import collections as model
from idsync.domain.results import RunState
from idsync.errors import ConfigError, StateConflictError
from idsync.services import collection_runs, collections, definitions, schedules
from idsync.services.collection_runs import Runtime
from idsync.store.runs_repo import RunRepository
from tests.scheduler_world import World, make_world
from tests.unit.conftest import copy_migrated


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite: Path) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    copy_migrated(migrated_sqlite, tmp_path / "idsync.db")  # where make_world keeps its database
    made = make_world(tmp_path)
    yield made
    made.ws.close()


def states(report: collection_runs.CollectionReport) -> list[tuple[str, str]]:
    return [(j.job_name, j.state.value) for j in report.jobs]


# ---------------------------------------------------------------- references


def test_a_collection_naming_an_unknown_job_is_refused(world: World) -> None:
    c = model.CollectionDefinition.model_validate({"name": "c", "jobs": ["people", "nope"]})
    with pytest.raises(ConfigError, match=r"^job collection 'c': job 'nope' does not exist$") as caught:
        collections.save_collection(world.ws, c)
    assert (caught.value.field, caught.value.hint) == ("jobs", "list the jobs")
    assert collections.list_collections(world.ws) == []


def test_a_collection_naming_an_unknown_schedule_is_refused(world: World) -> None:
    c = model.CollectionDefinition.model_validate({"name": "c", "jobs": ["people"], "schedule": "nightly"})
    with pytest.raises(ConfigError, match="schedule 'nightly' does not exist"):
        collections.review_changes(world.ws, c)


def test_a_collection_naming_an_unknown_smart_group_update_job_is_refused(world: World) -> None:
    c = model.CollectionDefinition.model_validate({"name": "c", "jobs": ["people"], "smart_group_jobs": ["staff"]})
    with pytest.raises(ConfigError, match="smart group update job 'staff' does not exist") as caught:
        collections.save_collection(world.ws, c)
    assert caught.value.field == "smart_group_jobs"


def test_a_job_or_schedule_in_use_cannot_be_removed(world: World) -> None:
    world.schedule("nightly", [{"kind": "daily", "start": "2030-01-01T02:00"}])
    world.collection("c", ["people"], schedule="nightly")
    with pytest.raises(StateConflictError, match=r"^sync job 'people' is used by collection\(s\) c$") as job:
        definitions.remove(world.ws, "job", "people")
    assert job.value.hint == "change or remove those collections first"
    with pytest.raises(StateConflictError, match=r"^schedule 'nightly' is used by collection\(s\) c$") as schedule:
        schedules.remove_schedule(world.ws, "nightly")
    assert schedule.value.hint == "take the schedule off those collections first"
    collections.remove_collection(world.ws, "c")
    schedules.remove_schedule(world.ws, "nightly")
    assert schedules.list_schedules(world.ws) == []


def test_review_says_what_an_edit_changes_and_saves_nothing(world: World) -> None:
    world.csv_job("groups", ["3,Grace,Hopper"])
    stored = world.collection("c", ["people", "groups"])
    edited = model.move_job(stored, "groups", 1)
    result = collections.review_changes(world.ws, edited)
    assert result.action == "update"
    assert [c.field for c in result.changes] == ["jobs"]
    assert collections.load_collection(world.ws, "c")[1].job_names == ["people", "groups"]
    assert collections.save_collection(world.ws, edited) == "updated"
    assert collections.load_collection(world.ws, "c")[1].job_names == ["groups", "people"]


# ---------------------------------------------------------------- runs


def test_a_collection_run_has_a_child_run_per_job_and_adds_their_counts(world: World) -> None:
    world.csv_job("more", ["3,Grace,Hopper"])
    world.collection("c", ["people", "more"])
    report = collection_runs.run_collection(world.ws, "c")
    run = report.run
    assert (run.kind, run.state, run.collection_name, run.job_name) == ("collection", RunState.SUCCEEDED, "c", "c")
    assert states(report) == [("people", "succeeded"), ("more", "succeeded")]
    assert all(j.parent_run_id == run.id and j.collection_name == "c" for j in report.jobs)
    assert run.counts.created == 3 and run.counts.read == 3
    assert run.lease_until is None and run.node is not None


def test_a_failed_job_with_abort_skips_the_rest(world: World) -> None:
    world.missing_source_job("broken")
    world.csv_job("after", ["3,Grace,Hopper"])
    world.collection("c", ["people", "broken", "after"])
    report = collection_runs.run_collection(world.ws, "c")
    assert states(report) == [("people", "succeeded"), ("broken", "failed"), ("after", "skipped")]
    assert report.run.state is RunState.FAILED
    assert "job 'broken' failed: CSV file not found" in (report.run.error or "")
    assert "1 job(s) after it skipped" in (report.run.error or "")
    assert report.jobs[2].error == "not run: job 'broken' failed and its on_failure is abort"


def test_a_failed_job_with_continue_lets_the_rest_run(world: World) -> None:
    world.missing_source_job("broken")
    world.csv_job("after", ["3,Grace,Hopper"])
    world.collection("c", ["people", {"job": "broken", "on_failure": "continue"}, "after"])
    report = collection_runs.run_collection(world.ws, "c")
    assert states(report) == [("people", "succeeded"), ("broken", "failed"), ("after", "succeeded")]
    assert report.run.state is RunState.FAILED
    assert report.run.counts.created == 3


def test_reordering_changes_the_run_order(world: World) -> None:
    world.csv_job("more", ["3,Grace,Hopper"])
    stored = world.collection("c", ["people", "more"])
    collections.save_collection(world.ws, model.move_job(stored, "more", 1))
    report = collection_runs.run_collection(world.ws, "c")
    assert [j.job_name for j in report.jobs] == ["more", "people"]
    assert report.jobs[0].id < report.jobs[1].id


def test_a_job_removed_since_fails_its_step(world: World) -> None:
    world.csv_job("more", ["3,Grace,Hopper"])
    world.collection("c", [{"job": "more", "on_failure": "continue"}, "people"])
    with world.ws.db.session() as session:
        from idsync.store.definitions_repo import DefinitionRepository

        DefinitionRepository(session, "job").remove("more", "tester")
    report = collection_runs.run_collection(world.ws, "c")
    assert states(report) == [("more", "failed"), ("people", "succeeded")]
    assert "no job named 'more'" in (report.jobs[0].error or "")


def test_preview_computes_each_job_plan_and_changes_nothing(world: World) -> None:
    world.csv_job("more", ["3,Grace,Hopper"])
    world.collection("c", ["people", "more"])
    result = collections.preview_collection(world.ws, "c")
    assert [(j.job, j.plan.counts.created if j.plan else None) for j in result.jobs] == [("people", 2), ("more", 1)]
    assert result.counts.created == 3
    with world.ws.db.session() as session:
        assert RunRepository(session).list(kind="collection") == []
    # Nothing was written: a real run still creates everything.
    assert collection_runs.run_collection(world.ws, "c").run.counts.created == 3


def test_preview_stops_after_a_failing_job_with_abort(world: World) -> None:
    world.missing_source_job("broken")
    world.collection("c", ["broken", "people"])
    result = collections.preview_collection(world.ws, "c")
    assert result.failed
    assert "CSV file not found" in (result.jobs[0].error or "")
    assert result.jobs[1].skipped == "not previewed: job 'broken' failed and its on_failure is abort"


# ---------------------------------------------------------------- overlap and terminate


def test_overlap_skip_records_a_skipped_run_with_the_reason(world: World) -> None:
    world.collection("c", ["people"])
    runtime = Runtime(node="node-a")
    first = collection_runs.start_run(world.ws, "c", runtime)
    second = collection_runs.start_run(world.ws, "c", runtime)
    assert (first.state, second.state) == (RunState.RUNNING, RunState.SKIPPED)
    assert second.reason == f"skipped: collection 'c' was still running (run {first.run_id}; overlap: skip)"
    assert collection_runs.report(world.ws, second.run_id).run.error == second.reason
    assert first.fence is not None
    done = collection_runs.execute_run(world.ws, first.run_id, first.fence, runtime)
    assert done.state is RunState.SUCCEEDED


def test_overlap_queue_holds_one_waiting_run(world: World) -> None:
    world.collection("c", ["people"], overlap="queue")
    runtime = Runtime(node="node-a")
    first = collection_runs.start_run(world.ws, "c", runtime)
    second = collection_runs.start_run(world.ws, "c", runtime)
    third = collection_runs.start_run(world.ws, "c", runtime)
    assert [s.state for s in (first, second, third)] == [RunState.RUNNING, RunState.QUEUED, RunState.SKIPPED]
    assert f"run {second.run_id} already waits in its queue" in (third.reason or "")
    # The queued run cannot start while the first runs...
    assert collection_runs.promote_queued(world.ws, runtime) == []
    assert first.fence is not None
    collection_runs.execute_run(world.ws, first.run_id, first.fence, runtime)
    # ...and starts once it has finished.
    promoted = collection_runs.promote_queued(world.ws, runtime)
    assert [p.run_id for p in promoted] == [second.run_id]
    assert promoted[0].fence is not None
    assert collection_runs.execute_run(world.ws, second.run_id, promoted[0].fence, runtime).state is RunState.SUCCEEDED


def test_terminating_a_queued_run_ends_it_and_a_finished_run_is_refused(world: World) -> None:
    world.collection("c", ["people"], overlap="queue")
    runtime = Runtime(node="node-a")
    first = collection_runs.start_run(world.ws, "c", runtime)
    second = collection_runs.start_run(world.ws, "c", runtime)
    ended = collection_runs.terminate_run(world.ws, second.run_id)
    assert (ended.state, ended.error) == (RunState.TERMINATED, "terminated by tester")
    assert first.fence is not None
    collection_runs.execute_run(world.ws, first.run_id, first.fence, runtime)
    with pytest.raises(StateConflictError, match=f"run {first.run_id} is succeeded: only a pending, queued or running run"):
        collection_runs.terminate_run(world.ws, first.run_id)


def test_terminate_stops_a_running_collection_between_jobs(world: World) -> None:
    world.csv_job("more", ["3,Grace,Hopper"])
    world.collection("c", ["people", "more"])
    runtime = Runtime(node="node-a")
    started = collection_runs.start_run(world.ws, "c", runtime)
    requested = collection_runs.terminate_run(world.ws, started.run_id, "maintenance window")
    assert requested.state is RunState.RUNNING and requested.stop_requested == "terminated by tester: maintenance window"
    assert started.fence is not None
    done = collection_runs.execute_run(world.ws, started.run_id, started.fence, runtime)
    assert (done.state, done.error) == (RunState.TERMINATED, "terminated by tester: maintenance window")
    report = collection_runs.report(world.ws, started.run_id)
    assert states(report) == [("people", "skipped"), ("more", "skipped")]


def test_a_stale_node_cannot_write_the_result_of_a_run_taken_over(world: World) -> None:
    world.collection("c", ["people"])
    runtime = Runtime(node="node-a")
    started = collection_runs.start_run(world.ws, "c", runtime)
    assert started.fence is not None
    from idsync.store.scheduling_repo import SchedulingRepository

    with world.ws.db.session() as session:
        taken = SchedulingRepository(session).release_node("node-a", RunState.FAILED, "node lost (lease expired)")
    assert taken == [started.run_id]
    done = collection_runs.execute_run(world.ws, started.run_id, started.fence, runtime)
    assert (done.state, done.error) == (RunState.FAILED, "node lost (lease expired)")
    assert any("no longer held this run" in line.message for line in _logs(world, started.run_id))
    assert collection_runs.report(world.ws, started.run_id).jobs == []


def _logs(world: World, run_id: int) -> list:  # type: ignore[type-arg]
    with world.ws.db.session() as session:
        return RunRepository(session).logs(run_id)
