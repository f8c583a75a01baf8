"""A preview's lease on the plan it computes, and plans left computing by a
dead process marked failed.

The tests are in a class so the PostgreSQL suite can run them unchanged.
"""

from __future__ import annotations

from datetime import timedelta

from idsync.domain.results import Counts, RunState
from idsync.store import Database, PlanRepository, RunRepository
from idsync.store.plans_repo import PREVIEW_LOST
from idsync.store.scheduling_repo import NODE_LOST, SchedulingRepository
from tests.clock import Clock

LEASE = timedelta(seconds=60)


def preview_plan(db: Database, clock: Clock) -> int:
    with db.session() as session:
        return PlanRepository(session, clock=clock).create(job_name="staff", job_id=None, node="host:1", lease=LEASE)


def state_of(db: Database, plan_id: int) -> tuple[str, str | None]:
    with db.session() as session:
        plan = PlanRepository(session).require(plan_id)
    return plan.state, plan.error


class TestPlanLeases:
    def test_a_preview_whose_lease_ran_out_is_failed_and_a_renewed_one_is_not(self, db: Database) -> None:
        clock = Clock()
        dead, alive = preview_plan(db, clock), preview_plan(db, clock)
        clock.advance(50)
        with db.session() as session:
            assert PlanRepository(session, clock=clock).renew_preview(alive, LEASE)
        clock.advance(20)  # past the first lease, within the renewed one
        with db.session() as session:
            assert PlanRepository(session, clock=clock).expire_previews() == [dead]
        assert state_of(db, dead) == ("failed", PREVIEW_LOST)
        assert state_of(db, alive) == ("computing", None)

    def test_a_preview_taken_for_dead_neither_renews_nor_finishes_its_plan(self, db: Database) -> None:
        clock = Clock()
        plan_id = preview_plan(db, clock)
        clock.advance(61)
        with db.session() as session:
            repo = PlanRepository(session, clock=clock)
            repo.expire_previews()
            assert not repo.renew_preview(plan_id, LEASE)
            assert not repo.finish_preview(plan_id, "ready", Counts(created=1))
        assert state_of(db, plan_id) == ("failed", PREVIEW_LOST)

    def test_a_finished_preview_is_never_expired(self, db: Database) -> None:
        clock = Clock()
        plan_id = preview_plan(db, clock)
        with db.session() as session:
            assert PlanRepository(session, clock=clock).finish_preview(plan_id, "ready", Counts(created=1))
        clock.advance(3600)
        with db.session() as session:
            assert PlanRepository(session, clock=clock).expire_previews() == []
        assert state_of(db, plan_id) == ("ready", None)

    def test_a_plan_without_a_lease_is_left_to_its_run(self, db: Database) -> None:
        """A run's plan (and a plan from before leases) has no lease of its own."""
        clock = Clock()
        with db.session() as session:
            plan_id = PlanRepository(session, clock=clock).create(job_name="staff", job_id=None)
        clock.advance(3600)
        with db.session() as session:
            assert PlanRepository(session, clock=clock).expire_previews() == []
        assert state_of(db, plan_id) == ("computing", None)

    def test_the_plan_a_lost_run_was_computing_is_failed_with_the_runs_reason(self, db: Database) -> None:
        clock = Clock()
        with db.session() as session:
            plan_id = PlanRepository(session, clock=clock).create(job_name="staff", job_id=None)
            runs = RunRepository(session, clock=clock)
            run_id = runs.create(job_name="staff", job_id=None, plan_id=plan_id)
            runs.start(run_id, node="host:2", lease=LEASE)
        with db.session() as session:
            assert PlanRepository(session).fail_orphans() == []  # its run still holds it
        clock.advance(61)
        with db.session() as session:
            SchedulingRepository(session, clock=clock).expire_leases()
            assert PlanRepository(session).fail_orphans() == [plan_id]
        assert state_of(db, plan_id) == ("failed", f"run {run_id} {RunState.FAILED.value}: {NODE_LOST}")
