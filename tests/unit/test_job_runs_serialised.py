"""One run of a job at a time, through the service layer on a real SQLite
file: a second start is refused naming the running run, whether either was
started on its own or by a collection run; a run whose process died (its
lease ran out) is marked failed first instead of blocking the job for ever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from idsync.domain.results import RunState
from idsync.errors import StateConflictError
from idsync.services import collection_runs, jobs
from idsync.services.collection_runs import Runtime
from idsync.store.runs_repo import RunRepository
from idsync.store.scheduling_repo import NODE_LOST
from idsync.store.tables import runs, utcnow
from tests.scheduler_world import World


@pytest.fixture
def batches(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Thirty people written in batches of ten: a run asks whether to stop between batches."""
    monkeypatch.setenv("IDSYNC_BATCH_SIZE", "10")
    (world.root / "people.csv").write_text(
        "id,first,last\n" + "".join(f"{i},F{i},L{i}\n" for i in range(30)), encoding="utf-8")


@pytest.mark.usefixtures("batches")
def test_a_second_run_of_a_running_job_is_refused_naming_it(world: World) -> None:
    refusals: list[str] = []

    def meanwhile() -> str | None:
        if not refusals:
            with pytest.raises(StateConflictError) as raised:
                jobs.run_job(world.ws, "people")
            refusals.append(raised.value.message)
            assert raised.value.hint and "idsync" not in raised.value.hint
        return None

    first = jobs.run_job(world.ws, "people", should_stop=meanwhile)
    assert first.state is RunState.SUCCEEDED and first.counts.created == 30
    assert refusals == [f"job 'people' is already running (run {first.id})"]
    with world.ws.db.session() as session:
        assert [r.id for r in RunRepository(session).list(job_name="people")] == [first.id]


@pytest.mark.usefixtures("batches")
def test_a_collection_run_does_not_run_a_job_that_is_running(world: World) -> None:
    world.collection("c", ["people"])
    reports: list[collection_runs.CollectionReport] = []

    def meanwhile() -> str | None:
        if not reports:
            reports.append(collection_runs.run_collection(world.ws, "c", Runtime()))
        return None

    first = jobs.run_job(world.ws, "people", should_stop=meanwhile)
    assert first.state is RunState.SUCCEEDED
    (report,) = reports
    assert report.run.state is RunState.FAILED
    (child,) = report.jobs
    assert child.state is RunState.FAILED and child.error == f"job 'people' is already running (run {first.id})"


def running_run(world: World, lease_until: timedelta) -> int:
    """A run of job people marked running with a lease ending *lease_until*
    from now, as a process that was killed leaves it."""
    with world.ws.db.session() as session:
        repo = RunRepository(session)
        job_id = jobs.load_job(world.ws, "people")[0]
        run_id = repo.create(job_name="people", job_id=job_id)
        repo.start(run_id, node="gone:1", lease=timedelta(seconds=60))
        session.execute(update(runs).where(runs.c.id == run_id).values(lease_until=utcnow() + lease_until))
    return run_id


def test_a_run_whose_lease_ran_out_is_marked_failed_and_the_job_runs(world: World) -> None:
    lost = running_run(world, timedelta(seconds=-1))
    run = jobs.run_job(world.ws, "people")
    assert run.state is RunState.SUCCEEDED
    with world.ws.db.session() as session:
        reaped = RunRepository(session).require(lost)
    assert reaped.state is RunState.FAILED and reaped.error == NODE_LOST


def test_a_run_holding_a_live_lease_is_respected(world: World) -> None:
    live = running_run(world, timedelta(seconds=60))
    with pytest.raises(StateConflictError, match=rf"job 'people' is already running \(run {live}\)"):
        jobs.run_job(world.ws, "people")
    with world.ws.db.session() as session:
        assert RunRepository(session).require(live).state is RunState.RUNNING
