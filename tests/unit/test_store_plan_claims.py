"""Plans claimed by one run, given back after a failed apply, with their record
errors; and one running run per job, kept by the database.

The tests are in classes so the PostgreSQL suite runs them unchanged.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import insert, select, text

from idsync.domain.results import Counts, ErrorItem, RunState
from idsync.errors import StateConflictError
from idsync.store import Database, PlanRepository, RunRepository
from idsync.store.scheduling_repo import NODE_LOST, SchedulingRepository
from idsync.store.tables import jobs, plans, utcnow
from tests.clock import Clock


def add_job(db: Database, name: str = "staff") -> int:
    """A job row (runs refer to it by id)."""
    now = utcnow()
    with db.session() as session:
        result = session.execute(
            insert(jobs).values(name=name, type="job", body={}, created_at=now, updated_at=now)
        )
        return int(result.inserted_primary_key[0])  # type: ignore[attr-defined]


def ready_plan(db: Database, job: str = "staff") -> int:
    with db.session() as session:
        repo = PlanRepository(session)
        plan_id = repo.create(job_name=job, job_id=None)
        repo.finish(plan_id, "ready", Counts(created=2))
        return plan_id


def new_run(db: Database, job_id: int | None = None, job: str = "staff", plan_id: int | None = None) -> int:
    with db.session() as session:
        return RunRepository(session).create(job_name=job, job_id=job_id, plan_id=plan_id)


def plan_state(db: Database, plan_id: int) -> tuple[str, int | None, str | None]:
    with db.session() as session:
        plan = PlanRepository(session).require(plan_id)
    return plan.state, plan.applied_run_id, plan.error


class TestPlanClaims:
    def test_a_ready_plan_is_claimed_by_one_run_only(self, db: Database) -> None:
        plan_id = ready_plan(db)
        first, second = new_run(db, plan_id=plan_id), new_run(db, plan_id=plan_id)
        with db.session() as session:
            PlanRepository(session).claim(plan_id, first)
        assert plan_state(db, plan_id) == ("applying", first, None)
        with (
            pytest.raises(StateConflictError, match=rf"^plan {plan_id} is being applied by run {first}$"),
            db.session() as session,
        ):
            PlanRepository(session).claim(plan_id, second)
        assert plan_state(db, plan_id) == ("applying", first, None)

    def test_an_applied_plan_is_refused(self, db: Database) -> None:
        plan_id = ready_plan(db)
        run_id = new_run(db, plan_id=plan_id)
        with db.session() as session:
            repo = PlanRepository(session)
            repo.claim(plan_id, run_id)
            repo.mark_applied(plan_id, run_id)
        with (
            pytest.raises(StateConflictError, match=rf"^plan {plan_id} is already applied by run {run_id}$") as raised,
            db.session() as session,
        ):
            PlanRepository(session).claim(plan_id, new_run(db))
        assert raised.value.hint and "idsync" not in raised.value.hint

    def test_a_plan_still_computing_or_failed_is_refused(self, db: Database) -> None:
        with db.session() as session:
            repo = PlanRepository(session)
            computing = repo.create(job_name="staff", job_id=None)
            failed = repo.create(job_name="staff", job_id=None)
            repo.finish(failed, "failed", Counts(), "source unreadable")
        for plan_id, words in ((computing, "still being computed"), (failed, "could not be computed")):
            with (
                pytest.raises(StateConflictError, match=words),
                db.session() as session,
            ):
                PlanRepository(session).claim(plan_id, new_run(db))

    def test_a_released_plan_is_ready_again_with_the_failure_noted(self, db: Database) -> None:
        plan_id = ready_plan(db)
        first, other = new_run(db, plan_id=plan_id), new_run(db)
        with db.session() as session:
            repo = PlanRepository(session)
            repo.claim(plan_id, first)
            assert not repo.release(plan_id, other, "not its run")  # only the holder gives it back
            assert repo.release(plan_id, first, f"run {first} failed: server down")
        assert plan_state(db, plan_id) == ("ready", None, f"run {first} failed: server down")
        second = new_run(db, plan_id=plan_id)
        with db.session() as session:
            PlanRepository(session).claim(plan_id, second)
            PlanRepository(session).mark_applied(plan_id, second)
        assert plan_state(db, plan_id) == ("applied", second, None)

    def test_a_plan_held_by_a_run_that_ended_elsewhere_is_given_back(self, db: Database) -> None:
        clock = Clock()
        plan_id, kept = ready_plan(db), ready_plan(db)
        lost, live = new_run(db, plan_id=plan_id), new_run(db, plan_id=kept)
        with db.session() as session:
            runs = RunRepository(session, clock=clock)
            runs.start(lost, node="gone", lease=timedelta(seconds=1))
            runs.start(live, node="here", lease=timedelta(seconds=60))
            plans_repo = PlanRepository(session)
            plans_repo.claim(plan_id, lost)
            plans_repo.claim(kept, live)
        clock.advance(5)
        with db.session() as session:
            assert SchedulingRepository(session, clock=clock).expire_leases() == [lost]
            assert PlanRepository(session).release_orphans() == [plan_id]
        state, holder, note = plan_state(db, plan_id)
        assert (state, holder) == ("ready", None) and note == f"run {lost} failed: {NODE_LOST}"
        assert plan_state(db, kept) == ("applying", live, None)

    def test_record_errors_are_kept_with_their_plan_in_order(self, db: Database) -> None:
        plan_id = ready_plan(db)
        items = [ErrorItem(f"bad row {i}", key=f"k{i}", attribute="mail", line=i + 2) for i in range(5)]
        with db.session() as session:
            repo = PlanRepository(session)
            repo.add_errors(plan_id, items[:3])
            repo.add_errors(plan_id, items[3:])
            repo.add_errors(plan_id, [])
        with db.session() as session:
            repo = PlanRepository(session)
            first = repo.errors(plan_id, limit=2)
            rest = repo.errors(plan_id, after=first[-1][0])
            assert [e for _, e in first + rest] == items
            assert repo.error_count(plan_id) == 5
            assert repo.delete(plan_id)
            assert repo.error_count(plan_id) == 0


class TestOneRunPerJob:
    def test_a_second_run_of_a_job_cannot_start(self, db: Database) -> None:
        job_id = add_job(db)
        first, second = new_run(db, job_id), new_run(db, job_id)
        with db.session() as session:
            RunRepository(session).start(first, node="a", lease=timedelta(seconds=60))
        with (
            pytest.raises(StateConflictError, match="its job has a running run already") as raised,
            db.session() as session,
        ):
            RunRepository(session).start(second)
        assert raised.value.field == "job"
        with db.session() as session:
            runs = RunRepository(session)
            assert runs.require(second).state is RunState.PENDING
            assert runs.running_job_run(job_id) == first
            runs.finish(first, RunState.SUCCEEDED, Counts())
        with db.session() as session:
            RunRepository(session).start(second)
            assert RunRepository(session).running_job_run(job_id) == second

    def test_a_refused_start_rolls_back_what_its_transaction_recorded(self, db: Database) -> None:
        job_id = add_job(db)
        with db.session() as session:
            RunRepository(session).start(new_run(db, job_id))
        with pytest.raises(StateConflictError), db.session() as session:
            runs = RunRepository(session)
            refused = runs.create(job_name="staff", job_id=job_id)
            runs.start(refused)
        with db.session() as session:
            assert RunRepository(session).get(refused) is None

    def test_other_jobs_and_collection_runs_are_not_held_back(self, db: Database) -> None:
        staff, other = add_job(db, "staff"), add_job(db, "other")
        with db.session() as session:
            runs = RunRepository(session)
            for run_id in (new_run(db, staff), new_run(db, other, "other")):
                runs.start(run_id)
            # Collection runs carry no job; a job's runs whose job was removed (NULL) never clash.
            for _ in range(2):
                runs.start(runs.create(job_name="c", job_id=None, kind="collection"))
                runs.start(runs.create(job_name="gone", job_id=None))
            assert runs.running_job_run(staff) is not None and runs.running_job_run(other) is not None

    def test_a_lease_sets_node_and_fence(self, db: Database) -> None:
        clock = Clock()
        job_id = add_job(db)
        run_id = new_run(db, job_id)
        with db.session() as session:
            fence = RunRepository(session, clock=clock).start(run_id, node="n1", lease=timedelta(seconds=30))
            run = RunRepository(session).require(run_id)
        assert (run.node, run.fence, run.lease_until) == ("n1", fence, clock.now + timedelta(seconds=30))


def test_upgrading_keeps_the_newest_of_several_running_runs_of_a_job(db: Database) -> None:
    """Revision 0005 meets a database where two runs of one job were left
    running: the newest stays running, the older is marked failed."""
    config = db._alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    job_id = add_job(db)
    with db.engine.begin() as conn:
        for _ in range(2):
            conn.execute(text(
                "INSERT INTO runs (kind, job_id, job_name, state, trigger, requested_by, created_at, counts, fence) "
                "VALUES ('job', :job, 'staff', 'running', 'manual', '', CURRENT_TIMESTAMP, '{}', 0)"
            ), {"job": job_id})
    db.upgrade()
    with db.session() as session:
        runs = sorted(RunRepository(session).list(job_name="staff"), key=lambda r: r.id)
        assert [r.state for r in runs] == [RunState.FAILED, RunState.RUNNING]
        assert runs[0].error and "newer run of the same job" in runs[0].error
        assert session.execute(select(plans.c.id)).first() is None
