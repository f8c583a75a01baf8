"""Applying a stored plan through the service layer, on a real SQLite file and
the embedded directory: claimed once, applied again after a failure without
writing anything twice, without its source, with its record errors; and a
run that meets an unexpected exception is recorded failed, never left running."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from idsync.connectors.base import ApplyOutcome
from idsync.domain.changes import Change
from idsync.domain.entry import Scope
from idsync.domain.results import RunState
from idsync.errors import StateConflictError, TransientError
from idsync.services import collection_runs, history, job_features, jobs
from idsync.services.collection_runs import Runtime
from idsync.store.runs_repo import RunRepository, RunRow
from tests.scheduler_world import PEOPLE, World


def people_rows(n: int) -> list[str]:
    return [f"{i},First{i},Last{i}" for i in range(n)]


def write_source(world: World, rows: list[str]) -> Path:
    path = world.root / "people.csv"
    path.write_text("id,first,last\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def uids(world: World) -> set[str]:
    from idsync.connectors.local import LocalDirectory

    with LocalDirectory(world.root / "dir.db") as directory:
        return {e.attrs.first("uid") or "" for e in directory.search(PEOPLE, Scope.ONE, "(uid=*)", ["uid"])}


def log_of(world: World, run: RunRow) -> str:
    return "\n".join(line.message for line in history.run_report(world.ws, run.id).log)


class Explodes:
    """An apply step that fails after *after* changes went by, with *error*."""

    def __init__(self, after: int, error: BaseException) -> None:
        self.limit, self.error, self.seen = after, error, 0

    def before(self, change: Change) -> Change:
        self.seen += 1
        if self.seen > self.limit:
            raise self.error
        return change

    def after(self, outcome: ApplyOutcome) -> ApplyOutcome:
        return outcome

    def flush(self) -> None:
        pass


def exploding(monkeypatch: pytest.MonkeyPatch, after: int, error: BaseException) -> None:
    monkeypatch.setattr(job_features, "apply_steps", lambda *_args: [Explodes(after, error)])


# ---------------------------------------------------------------- one apply at a time, again after a failure


def test_a_plan_whose_apply_failed_before_writing_is_applied_later(world: World) -> None:
    plan = jobs.preview_job(world.ws, "people").plan
    store = world.root / "dir.db"
    shutil.move(store, world.root / "dir.db.away")
    store.mkdir()  # the store cannot be opened: the run fails before writing anything
    failed = jobs.run_job(world.ws, "people", plan_id=plan.id)
    assert failed.state is RunState.FAILED
    assert history.get_plan(world.ws, plan.id).state == "ready"
    assert f"run {failed.id} failed" in (history.get_plan(world.ws, plan.id).error or "")

    store.rmdir()
    shutil.move(world.root / "dir.db.away", store)
    applied = jobs.run_job(world.ws, "people", plan_id=plan.id)
    assert applied.state is RunState.SUCCEEDED and applied.counts.created == 2
    stored = history.get_plan(world.ws, plan.id)
    assert (stored.state, stored.applied_run_id, stored.error) == ("applied", applied.id, None)
    with pytest.raises(StateConflictError, match=rf"plan {plan.id} is already applied by run {applied.id}"):
        jobs.run_job(world.ws, "people", plan_id=plan.id)


def test_applying_again_after_a_failure_midway_writes_only_the_rest(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded directory commits 500 changes at a time: the first batch
    is written, then the run fails; applying the plan again finds those in
    place (counted unchanged) and creates the other 200."""
    write_source(world, people_rows(700))
    plan = jobs.preview_job(world.ws, "people").plan
    with monkeypatch.context() as patched:
        exploding(patched, 600, TransientError("connection to the directory lost"))
        failed = jobs.run_job(world.ws, "people", plan_id=plan.id)
    assert failed.state is RunState.FAILED and failed.error == "connection to the directory lost"
    assert failed.counts.created == 500 and len(uids(world)) == 500
    assert history.get_plan(world.ws, plan.id).state == "ready"

    again = jobs.run_job(world.ws, "people", plan_id=plan.id)
    assert again.state is RunState.SUCCEEDED
    assert (again.counts.created, again.counts.unchanged, again.counts.errors) == (200, 500, 0)
    assert len(uids(world)) == 700
    assert "500 change(s) of plan" in log_of(world, again)


def test_a_large_apply_fails_midway_through_the_writer_process_and_is_finished_again(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Past its first 2,000 to 4,000 changes the embedded directory stores
    through a writer process: when the changes stop coming (the failure at
    4,800), what the writer committed (4,500: nine batches) is counted, and
    applying again writes only the rest."""
    write_source(world, people_rows(5200))
    plan = jobs.preview_job(world.ws, "people").plan
    caplog.set_level("DEBUG", logger="idsync.connectors.local.directory")
    with monkeypatch.context() as patched:
        exploding(patched, 4800, TransientError("connection to the directory lost"))
        failed = jobs.run_job(world.ws, "people", plan_id=plan.id)
    assert failed.state is RunState.FAILED and failed.error == "connection to the directory lost"
    assert failed.counts.created == 4500 and len(uids(world)) == 4500
    assert "stores the next batches" in caplog.text

    again = jobs.run_job(world.ws, "people", plan_id=plan.id)
    assert again.state is RunState.SUCCEEDED
    assert (again.counts.created, again.counts.unchanged, again.counts.errors) == (700, 4500, 0)
    assert len(uids(world)) == 5200


def test_a_stopped_apply_leaves_its_plan_ready(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between batches of the apply (100 changes here), a stop request ends the
    run (terminated) with what it wrote counted; the plan is ready again and
    applying it again finishes the work."""
    monkeypatch.setenv("IDSYNC_BATCH_SIZE", "100")
    write_source(world, people_rows(1200))
    plan = jobs.preview_job(world.ws, "people").plan
    asked = []

    def stop_at_the_sixth_batch() -> str | None:
        asked.append(1)
        return "stop: enough for now" if len(asked) == 6 else None

    stopped = jobs.run_job(world.ws, "people", plan_id=plan.id, should_stop=stop_at_the_sixth_batch)
    assert stopped.state is RunState.TERMINATED
    # The embedded directory had committed its first 500; the sixth batch was never handed over.
    assert stopped.counts.created == len(uids(world)) == 500
    assert history.get_plan(world.ws, plan.id).state == "ready"
    again = jobs.run_job(world.ws, "people", plan_id=plan.id)
    assert (again.counts.created, again.counts.unchanged) == (700, 500)
    assert len(uids(world)) == 1200


# ---------------------------------------------------------------- the source is not read again


def test_a_stored_plan_is_applied_without_its_source(world: World) -> None:
    plan = jobs.preview_job(world.ws, "people").plan
    os.remove(world.root / "people.csv")
    run = jobs.run_job(world.ws, "people", plan_id=plan.id)
    assert run.state is RunState.SUCCEEDED and run.counts.created == 2 and run.counts.read == 0
    assert uids(world) == {"1", "2"}


# ---------------------------------------------------------------- record errors travel with the plan


def test_record_errors_of_a_preview_are_kept_and_reported_by_the_apply(world: World) -> None:
    write_source(world, ["1,Ada,Lovelace", ",No,Key", ",Also,Keyless", "2,Alan,Turing", "1,Ada,Again"])
    preview = jobs.preview_job(world.ws, "people")
    assert len(preview.errors) == 3
    errors, total = history.plan_errors(world.ws, preview.plan.id)
    assert total == 3 and errors == preview.errors

    run = jobs.run_job(world.ws, "people", plan_id=preview.plan.id)
    assert run.state is RunState.COMPLETED_WITH_ERRORS
    assert (run.counts.created, run.counts.errors) == (2, 3)
    report = history.run_report(world.ws, run.id)
    assert report.error_total == 3 and report.errors == preview.errors


def test_a_held_runs_record_errors_go_with_its_plan(world: World) -> None:
    world.define("job", {
        "name": "people", "source": "people", "destination": {"store": "dir", "container": PEOPLE},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "cn", "join": {"fields": ["first", "last"]}},
            {"attribute": "sn", "from": "last"},
        ],
        "limits": {"max_creates": 1},
    })
    write_source(world, ["1,Ada,Lovelace", ",No,Key", "2,Alan,Turing"])
    held = jobs.run_job(world.ws, "people")
    assert held.state is RunState.HELD and held.plan_id is not None
    assert "apply it to release the run" in log_of(world, held) and "idsync" not in log_of(world, held)
    assert history.plan_errors(world.ws, held.plan_id)[1] == 1
    released = jobs.run_job(world.ws, "people", plan_id=held.plan_id)
    assert (released.state, released.counts.created, released.counts.errors) == (RunState.COMPLETED_WITH_ERRORS, 2, 1)


# ---------------------------------------------------------------- unexpected exceptions


def test_a_run_meeting_an_unexpected_exception_is_recorded_failed_then_raises(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    exploding(monkeypatch, 1, ValueError("bad value in a step"))
    with pytest.raises(ValueError, match="bad value in a step"):
        jobs.run_job(world.ws, "people")
    with world.ws.db.session() as session:
        (run,) = RunRepository(session).list(job_name="people")
    assert run.state is RunState.FAILED and run.finished_at is not None
    assert run.error == "unexpected error ValueError: bad value in a step"
    assert run.counts.created == 0 and uids(world) == set()  # the change in hand was never handed over


def test_a_stored_plan_apply_meeting_an_unexpected_exception_gives_the_plan_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = jobs.preview_job(world.ws, "people").plan
    with monkeypatch.context() as patched:
        exploding(patched, 0, KeyError("surprise"))
        with pytest.raises(KeyError):
            jobs.run_job(world.ws, "people", plan_id=plan.id)
    stored = history.get_plan(world.ws, plan.id)
    with world.ws.db.session() as session:
        (failed,) = RunRepository(session).list(job_name="people")
    assert failed.state is RunState.FAILED and failed.error == "unexpected error KeyError: 'surprise'"
    assert (stored.state, stored.error) == ("ready", f"run {failed.id} failed: {failed.error}")
    assert jobs.run_job(world.ws, "people", plan_id=plan.id).state is RunState.SUCCEEDED


def test_a_collection_run_meeting_an_unexpected_exception_is_recorded_failed_then_raises(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.collection("c", ["people"])
    exploding(monkeypatch, 0, ValueError("bad value in a step"))
    with pytest.raises(ValueError, match="bad value in a step"):
        collection_runs.run_collection(world.ws, "c", Runtime())
    with world.ws.db.session() as session:
        runs = RunRepository(session)
        (parent,) = runs.list(kind="collection")
        (child,) = runs.children(parent.id)
    assert parent.state is RunState.FAILED and parent.error == "unexpected error ValueError: bad value in a step"
    assert child.state is RunState.FAILED and child.error == parent.error
