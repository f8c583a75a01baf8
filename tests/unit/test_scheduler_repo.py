"""The scheduler's tables: occurrences inserted once, claims, the overlap
indexes, leases and fences.

The tests are in a class so the PostgreSQL suite runs them unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from idsync.domain.results import Counts, RunState
from idsync.store import Database
from idsync.store.collections_repo import CollectionRunRepository
from idsync.store.definitions_repo import DefinitionRepository
from idsync.store.runs_repo import RunRepository
from idsync.store.scheduling_repo import NODE_LOST, SchedulingRepository, claim, enqueue
from tests.clock import Clock

DUE = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)


def a_schedule(db: Database) -> int:
    with db.session() as session:
        repo = DefinitionRepository(session, "schedule")
        repo.put("nightly", "", {"name": "nightly", "triggers": []}, None, "tester")
        stored = repo.require("nightly")
    return stored.id


def a_run(db: Database, collection: str = "c", clock: Clock | None = None) -> int:
    with db.session() as session:
        return CollectionRunRepository(session, clock=clock or Clock()).create(
            collection_id=None, collection_name=collection, trigger="schedule", requested_by="scheduler"
        )


class TestSchedulingRepository:
    def test_an_occurrence_is_inserted_once(self, db: Database) -> None:
        schedule = a_schedule(db)
        kwargs = {"schedule_id": schedule, "schedule_name": "nightly", "trigger_index": 0, "due_at": DUE, "state": "fired"}
        with db.session() as session:
            first = SchedulingRepository(session).insert_occurrence(node="a", **kwargs)  # type: ignore[arg-type]
        with db.session() as session:
            second = SchedulingRepository(session).insert_occurrence(node="b", **kwargs)  # type: ignore[arg-type]
            other = SchedulingRepository(session).insert_occurrence(
                node="b", **{**kwargs, "trigger_index": 1}  # type: ignore[arg-type]
            )
        assert first is not None and second is None and other is not None
        with db.session() as session:
            recorded = SchedulingRepository(session).occurrences("nightly")
        assert [(o.trigger_index, o.node, o.due_at) for o in recorded] == [(1, "b", DUE), (0, "a", DUE)]

    def test_occurrences_inserted_at_once_are_owned_once(self, db: Database) -> None:
        schedule = a_schedule(db)
        keys = [(schedule, "nightly", index, DUE) for index in range(3)]
        with db.session() as session:
            first = SchedulingRepository(session).insert_occurrences(keys[:2], state="fired", node="a")
        with db.session() as session:
            second = SchedulingRepository(session).insert_occurrences(keys, state="fired", node="b")
        assert set(first) == set(keys[:2]) and list(second) == [keys[2]]
        assert len(set(first.values()) | set(second.values())) == 3
        with db.session() as session:
            recorded = SchedulingRepository(session).occurrences("nightly")
        assert sorted((o.trigger_index, o.node) for o in recorded) == [(0, "a"), (1, "a"), (2, "b")]

    def test_cursors_moved_at_once_only_move_forward(self, db: Database) -> None:
        schedule = a_schedule(db)
        with db.session() as session:
            repo = SchedulingRepository(session)
            repo.advance_cursors({schedule: DUE})
            repo.advance_cursors({schedule: DUE - timedelta(hours=1)})
            assert repo.cursor(schedule) == DUE
            repo.advance_cursors({schedule: DUE + timedelta(minutes=1)})
            assert repo.cursor(schedule) == DUE + timedelta(minutes=1)

    def test_runs_claimed_at_once_get_fences_or_none_when_one_is_refused(self, db: Database) -> None:
        free, other, busy = a_run(db, "c1"), a_run(db, "c2"), a_run(db, "c3")
        holder = a_run(db, "c3")
        assert claim(db, holder, expected=RunState.PENDING, node="x", lease=timedelta(minutes=1)) is not None
        with db.session() as session:
            refused = SchedulingRepository(session).claim_runs([free, other, busy], node="a", lease=timedelta(minutes=1))
        assert refused is None
        with db.session() as session:
            repo = SchedulingRepository(session)
            claimed = repo.claim_runs([free, other], node="a", lease=timedelta(minutes=1))
            again = repo.claim_runs([free, other], node="b", lease=timedelta(minutes=1))
        assert claimed is not None and set(claimed) == {free, other} and again == {}
        with db.session() as session:
            rows = {run_id: RunRepository(session).require(run_id) for run_id in (free, other, busy)}
        assert [rows[r].state for r in (free, other, busy)] == [RunState.RUNNING, RunState.RUNNING, RunState.PENDING]
        assert rows[free].fence == claimed[free] and rows[free].node == "a"

    def test_the_cursor_only_moves_forward(self, db: Database) -> None:
        schedule = a_schedule(db)
        with db.session() as session:
            repo = SchedulingRepository(session)
            assert repo.cursor(schedule) is None
            repo.advance_cursor(schedule, DUE)
            repo.advance_cursor(schedule, DUE - timedelta(hours=1))
            assert repo.cursor(schedule) == DUE
            repo.reset_cursor(schedule, DUE - timedelta(days=1))
            assert repo.cursor(schedule) == DUE - timedelta(days=1)

    def test_one_running_and_one_queued_run_per_collection(self, db: Database) -> None:
        runs = [a_run(db) for _ in range(3)]
        other = a_run(db, "other")
        lease = timedelta(seconds=30)
        assert claim(db, runs[0], expected=RunState.PENDING, node="a", lease=lease) == 1
        assert claim(db, runs[1], expected=RunState.PENDING, node="b", lease=lease) is None
        assert claim(db, other, expected=RunState.PENDING, node="b", lease=lease) == 1
        assert enqueue(db, runs[1]) is True
        assert enqueue(db, runs[2]) is False
        with db.session() as session:
            repo = SchedulingRepository(session)
            assert repo.holder("c") == runs[0]
            assert repo.holder("c", RunState.QUEUED) == runs[1]
            assert repo.queued_runs() == [(runs[1], "c")]

    def test_a_claim_is_won_by_one_node_only(self, db: Database) -> None:
        run = a_run(db, "solo")
        lease = timedelta(seconds=30)
        assert claim(db, run, expected=RunState.PENDING, node="a", lease=lease) == 1
        assert claim(db, run, expected=RunState.PENDING, node="b", lease=lease) is None
        with db.session() as session:
            assert RunRepository(session).require(run).node == "a"

    def test_leases_are_renewed_and_expire(self, db: Database) -> None:
        clock = Clock(DUE)
        run = a_run(db, clock=clock)
        fence = claim(db, run, expected=RunState.PENDING, node="a", lease=timedelta(seconds=30), clock=clock)
        assert fence is not None
        with db.session() as session:
            child = RunRepository(session, clock=clock).create(job_name="j", job_id=None, parent_run_id=run)
            RunRepository(session, clock=clock).start(child)
        clock.advance(25)
        with db.session() as session:
            assert SchedulingRepository(session, clock=clock).renew(run, fence, timedelta(seconds=30))
            assert SchedulingRepository(session, clock=clock).expire_leases() == []
        clock.advance(31)
        with db.session() as session:
            assert SchedulingRepository(session, clock=clock).expire_leases() == [run]
        with db.session() as session:
            repo = RunRepository(session)
            lost, job = repo.require(run), repo.require(child)
            assert not SchedulingRepository(session, clock=clock).renew(run, fence, timedelta(seconds=30))
        assert (lost.state, lost.error, lost.fence) == (RunState.FAILED, NODE_LOST, fence + 1)
        assert (job.state, job.error) == (RunState.FAILED, NODE_LOST)

    def test_a_result_is_written_only_with_the_current_fence(self, db: Database) -> None:
        run = a_run(db)
        fence = claim(db, run, expected=RunState.PENDING, node="a", lease=timedelta(seconds=30))
        assert fence is not None
        with db.session() as session:
            repo = SchedulingRepository(session)
            assert not repo.finish_fenced(run, fence + 1, RunState.SUCCEEDED, Counts(read=1), None)
            assert repo.finish_fenced(run, fence, RunState.SUCCEEDED, Counts(read=1), None)
            assert not repo.finish_fenced(run, fence, RunState.FAILED, Counts(), "late")
        with db.session() as session:
            done = RunRepository(session).require(run)
        assert (done.state, done.counts.read, done.lease_until) == (RunState.SUCCEEDED, 1, None)

    def test_a_worker_takes_a_deferred_run_over_at_its_fence_only(self, db: Database) -> None:
        clock = Clock(DUE)
        run = a_run(db, clock=clock)
        fence = claim(db, run, expected=RunState.PENDING, node="scheduler", lease=timedelta(seconds=30), clock=clock)
        assert fence is not None
        clock.advance(20)
        with db.session() as session:
            repo = SchedulingRepository(session, clock=clock)
            assert repo.take_over(run, fence + 1, "stale", timedelta(seconds=30)) is None
            assert repo.take_over(run, fence, "worker", timedelta(seconds=30)) == fence + 1
            assert repo.take_over(run, fence, "another", timedelta(seconds=30)) is None  # taken already
        with db.session() as session:
            taken = RunRepository(session).require(run)
            assert not SchedulingRepository(session, clock=clock).finish_fenced(run, fence, RunState.FAILED, Counts(), "old")
        assert (taken.state, taken.node, taken.fence, taken.started_at) == (RunState.RUNNING, "worker", fence + 1, DUE + timedelta(seconds=20))
        assert taken.lease_until == DUE + timedelta(seconds=50)

    def test_release_node_ends_its_running_runs_only(self, db: Database) -> None:
        mine, theirs = a_run(db, "x"), a_run(db, "y")
        claim(db, mine, expected=RunState.PENDING, node="a", lease=timedelta(seconds=30))
        claim(db, theirs, expected=RunState.PENDING, node="b", lease=timedelta(seconds=30))
        with db.session() as session:
            assert SchedulingRepository(session).release_node("a", RunState.TERMINATED, "shutting down") == [mine]
        with db.session() as session:
            repo = RunRepository(session)
            assert repo.require(mine).state is RunState.TERMINATED
            assert repo.require(theirs).state is RunState.RUNNING

    def test_claims_in_one_transaction_refused_undo_only_themselves(self, db: Database) -> None:
        """An occurrence and its runs in one transaction: the database refusing a
        claim (the collection runs already) or a place in the queue (taken) undoes
        that statement only; the occurrence and the runs' rows commit with the rest."""
        schedule = a_schedule(db)
        running = a_run(db)
        lease = timedelta(seconds=30)
        assert claim(db, running, expected=RunState.PENDING, node="a", lease=lease) == 1
        with db.session() as session:
            repo = SchedulingRepository(session)
            occurrence = repo.insert_occurrence(
                schedule_id=schedule, schedule_name="nightly", trigger_index=0, due_at=DUE, state="fired", node="b"
            )
            runs = CollectionRunRepository(session)
            queued, refused, free = (
                runs.create(collection_id=None, collection_name=name, trigger="schedule", requested_by="scheduler",
                            occurrence_id=occurrence)
                for name in ("c", "c", "free")
            )
            assert repo.claim_run(queued, expected=RunState.PENDING, node="b", lease=lease) is None
            assert repo.enqueue_run(queued) is True
            assert repo.claim_run(refused, expected=RunState.PENDING, node="b", lease=lease) is None
            assert repo.enqueue_run(refused) is False
            assert repo.claim_run(free, expected=RunState.PENDING, node="b", lease=lease) == 1
            assert repo.claim_run(free, expected=RunState.PENDING, node="c", lease=lease) is None
        with db.session() as session:
            [recorded] = SchedulingRepository(session).occurrences("nightly")
            states = {run: RunRepository(session).require(run) for run in (queued, refused, free)}
        assert recorded.id == occurrence
        assert [(r.state, r.occurrence_id, r.node) for r in states.values()] == [
            (RunState.QUEUED, occurrence, None), (RunState.PENDING, occurrence, None), (RunState.RUNNING, occurrence, "b"),
        ]
