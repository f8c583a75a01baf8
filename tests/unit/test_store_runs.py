"""Runs: life cycle, counts, record errors, log and history queries.

The tests are in a class so the PostgreSQL suite runs them unchanged.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from idsync.domain.results import Counts, ErrorItem, RunState
from idsync.errors import NotFoundError
from idsync.store import Database, PlanRepository, RunRepository
from idsync.store.tables import run_errors, run_logs
from tests.clock import Clock


def rows(db: Database, table: object, run_id: int) -> int:
    with db.session() as session:
        query = select(func.count()).select_from(table).where(table.c.run_id == run_id)  # type: ignore[attr-defined]
        return int(session.execute(query).scalar_one())


class TestRunRepository:
    def test_a_new_run_is_pending_with_zero_counts(self, db: Database) -> None:
        clock = Clock()
        with db.session() as session:
            run_id = RunRepository(session, clock=clock).create(job_name="staff", job_id=None)
        with db.session() as session:
            run = RunRepository(session).require(run_id)
        assert run.state is RunState.PENDING
        assert (run.kind, run.job_name, run.job_id, run.plan_id) == ("job", "staff", None, None)
        assert (run.trigger, run.requested_by) == ("manual", "")
        assert run.counts == Counts()
        assert run.created_at == clock.now
        assert (run.started_at, run.finished_at, run.error, run.duration_seconds) == (None, None, None, None)

    def test_create_keeps_every_field_given(self, db: Database) -> None:
        with db.session() as session:
            plan_id = PlanRepository(session).create(job_name="staff", job_id=None)
            repo = RunRepository(session)
            run_id = repo.create(
                job_name="staff", job_id=None, plan_id=plan_id, kind="collection",
                trigger="schedule", requested_by="scheduler",
            )
            run = repo.require(run_id)
        assert (run.plan_id, run.kind, run.trigger, run.requested_by) == (plan_id, "collection", "schedule", "scheduler")

    def test_a_run_starts_then_finishes_with_its_counts_and_duration(self, db: Database) -> None:
        clock = Clock()
        with db.session() as session:
            repo = RunRepository(session, clock=clock)
            run_id = repo.create(job_name="staff", job_id=None)
            clock.advance(5)
            repo.start(run_id)
            running = repo.require(run_id)
            clock.advance(12.5)
            repo.finish(run_id, RunState.COMPLETED_WITH_ERRORS, Counts(read=10, created=7, errors=3))
            done = repo.require(run_id)
        assert running.state is RunState.RUNNING
        assert running.started_at == clock.now - timedelta(seconds=12.5)
        assert done.state is RunState.COMPLETED_WITH_ERRORS
        assert done.counts == Counts(read=10, created=7, errors=3)
        assert done.finished_at == clock.now
        assert done.duration_seconds == 12.5

    def test_a_failed_run_keeps_its_fatal_error(self, db: Database) -> None:
        with db.session() as session:
            repo = RunRepository(session)
            run_id = repo.create(job_name="staff", job_id=None)
            repo.start(run_id)
            repo.finish(run_id, RunState.FAILED, Counts(read=2), error="cannot reach ldap://dir:389")
            run = repo.require(run_id)
        assert (run.state, run.error) == (RunState.FAILED, "cannot reach ldap://dir:389")

    def test_a_run_cannot_finish_in_an_unfinished_state(self, db: Database) -> None:
        with db.session() as session:
            repo = RunRepository(session)
            run_id = repo.create(job_name="staff", job_id=None)
            with pytest.raises(ValueError, match="cannot finish in state 'running'"):
                repo.finish(run_id, RunState.RUNNING, Counts())

    def test_progress_counts_are_visible_while_running(self, db: Database) -> None:
        with db.session() as session:
            repo = RunRepository(session)
            run_id = repo.create(job_name="staff", job_id=None)
            repo.start(run_id)
        with db.session() as session:
            RunRepository(session).update_counts(run_id, Counts(read=500, updated=20))
        with db.session() as session:
            run = RunRepository(session).require(run_id)
        assert (run.state, run.counts) == (RunState.RUNNING, Counts(read=500, updated=20))

    def test_record_errors_are_kept_in_order_with_where_they_happened(self, db: Database) -> None:
        items = [
            ErrorItem("missing mail", key="ann", attribute="mail", line=3, dn="uid=ann,dc=example,dc=org"),
            ErrorItem("no match"),
            *(ErrorItem(f"error {i}", key=f"k{i}") for i in range(2000)),
        ]
        with db.session() as session:
            repo = RunRepository(session)
            run_id = repo.create(job_name="staff", job_id=None)
            repo.add_errors(run_id, items[:1])
            repo.add_errors(run_id, items[1:])
            repo.add_errors(run_id, [])
        with db.session() as session:
            repo = RunRepository(session)
            assert repo.errors(run_id) == items
            assert repo.errors(run_id, limit=2) == items[:2]
            assert repo.error_count(run_id) == 2002

    def test_the_log_is_kept_in_order(self, db: Database) -> None:
        clock = Clock()
        with db.session() as session:
            repo = RunRepository(session, clock=clock)
            run_id = repo.create(job_name="staff", job_id=None)
            repo.log(run_id, "INFO", "reading source hr")
            clock.advance(1)
            repo.log(run_id, "WARNING", "3 records skipped")
            lines = repo.logs(run_id)
        assert [(line.level, line.message) for line in lines] == [
            ("INFO", "reading source hr"),
            ("WARNING", "3 records skipped"),
        ]
        assert lines[1].at == clock.now

    def test_a_missing_run_is_not_found(self, db: Database) -> None:
        with db.session() as session:
            repo = RunRepository(session)
            assert repo.get(999) is None
            with pytest.raises(NotFoundError, match=r"^no run 999$") as raised:
                repo.require(999)
            assert raised.value.hint and "idsync" not in raised.value.hint
            with pytest.raises(NotFoundError):
                repo.start(999)
            assert repo.errors(999) == [] and repo.logs(999) == [] and repo.error_count(999) == 0

    def test_list_is_newest_first_with_filters_and_a_limit(self, db: Database) -> None:
        clock = Clock()
        with db.session() as session:
            repo = RunRepository(session, clock=clock)
            ids = []
            for name in ("staff", "alumni", "staff", "staff"):
                clock.advance(60)
                ids.append(repo.create(job_name=name, job_id=None))
            repo.finish(ids[2], RunState.SUCCEEDED, Counts())
            assert [r.id for r in repo.list()] == ids[::-1]
            assert [r.id for r in repo.list(limit=2)] == [ids[3], ids[2]]
            assert [r.id for r in repo.list(job_name="staff")] == [ids[3], ids[2], ids[0]]
            assert [r.id for r in repo.list(state=RunState.SUCCEEDED)] == [ids[2]]
            assert [r.id for r in repo.list(job_name="alumni", state=RunState.PENDING)] == [ids[1]]
            assert repo.list(job_name="nobody") == []

    def test_last_successful_is_the_latest_succeeded_run_of_the_job(self, db: Database) -> None:
        clock = Clock()
        with db.session() as session:
            repo = RunRepository(session, clock=clock)
            outcomes = [RunState.SUCCEEDED, RunState.SUCCEEDED, RunState.COMPLETED_WITH_ERRORS, RunState.FAILED]
            ids = []
            for state in outcomes:
                clock.advance(60)
                run_id = repo.create(job_name="staff", job_id=None)
                repo.finish(run_id, state, Counts())
                ids.append(run_id)
            clock.advance(60)
            repo.create(job_name="staff", job_id=None)
            other = repo.create(job_name="alumni", job_id=None)
            repo.finish(other, RunState.SUCCEEDED, Counts())
            last = repo.last_successful("staff")
            lenient = repo.last_successful(
                "staff", states=(RunState.SUCCEEDED, RunState.COMPLETED_WITH_ERRORS)
            )
            assert repo.last_successful("payroll") is None
        assert last is not None and last.id == ids[1]
        assert lenient is not None and lenient.id == ids[2]

    def test_deleting_a_run_deletes_its_errors_and_log(self, db: Database) -> None:
        with db.session() as session:
            repo = RunRepository(session)
            run_id = repo.create(job_name="staff", job_id=None)
            repo.add_errors(run_id, [ErrorItem("bad")])
            repo.log(run_id, "INFO", "hello")
        assert rows(db, run_errors, run_id) == rows(db, run_logs, run_id) == 1
        with db.session() as session:
            assert RunRepository(session).delete(run_id) is True
            assert RunRepository(session).delete(run_id) is False
        assert rows(db, run_errors, run_id) == rows(db, run_logs, run_id) == 0

    def test_deleting_a_plan_keeps_the_runs_that_applied_it(self, db: Database) -> None:
        with db.session() as session:
            plan_id = PlanRepository(session).create(job_name="staff", job_id=None)
            run_id = RunRepository(session).create(job_name="staff", job_id=None, plan_id=plan_id)
        with db.session() as session:
            assert PlanRepository(session).delete(plan_id)
        with db.session() as session:
            run = RunRepository(session).require(run_id)
        assert (run.plan_id, run.job_name) == (None, "staff")
