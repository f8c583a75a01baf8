"""Requests through the services, on a real SQLite file and the embedded directory:
the gate, decisions with principals and roles, the inbox, expiry, the skip of
scheduled runs, held runs [S7]."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from idsync.domain.entry import Scope
from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.errors import ConfigError, PermissionDeniedError, StateConflictError
from idsync.runtime.executor import InlineExecutor
from idsync.runtime.scheduler import Scheduler
from idsync.services import (
    collection_runs,
    connections,
    jobs,
    occurrence_runs,
    request_runs,
    requests,
    schedules,
)
from idsync.services.collection_runs import Runtime
from idsync.services.request_decisions import record
from idsync.services.workspace import Workspace
from idsync.store.requests_repo import RequestRepository
from idsync.store.runs_repo import RunRepository
from idsync.store.tables import utcnow
from idsync.workflow.requests import Decision
from tests.clock import Clock
from tests.people import add_user
from tests.scheduler_world import PEOPLE, SUFFIX, World, make_world, wall
from tests.unit.conftest import copy_migrated


def workflow_store(world: World, **workflow: Any) -> None:
    """The world's store ``dir``, now with a workflow."""
    world.define("store", {
        "name": "dir", "kind": "local", "path": str(world.root / "dir.db"), "suffix": SUFFIX,
        "workflow": {"approvers": ["alice", "bob"], **workflow},
    })


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite: Path) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    copy_migrated(migrated_sqlite, tmp_path / "idsync.db")
    made = make_world(tmp_path)
    add_user(made.ws, "tester", ["admin"])  # the world's own principal, once users exist
    for name, roles in (("rita", ["operator"]), ("alice", ["approver"]), ("bob", ["approver"]),
                        ("carol", ["operator"]), ("dave", ["approver"]), ("ann", ["auditor"])):
        add_user(made.ws, name, roles)
    made.collection("c", ["people"])
    yield made
    made.ws.close()


def as_(world: World, name: str) -> Workspace:
    return world.ws.acting_as(Principal(name, "user"))


def people_in_directory(world: World) -> list[str]:
    with connections.directory(world.ws, "dir") as directory:
        return sorted(e.dn for e in directory.search(PEOPLE, Scope.ONE, "(objectClass=*)", ["uid"]))


def raise_request(world: World, requester: str = "rita") -> int:
    report = collection_runs.run_collection(as_(world, requester), "c")
    assert report.run.state is RunState.AWAITING_APPROVAL, report.run.error
    with world.ws.db.session() as session:
        found = RequestRepository(session).for_run(report.run.id)
    assert found is not None
    return found.id


def run_of(world: World, request_id: int) -> Any:
    with world.ws.db.session() as session:
        request = RequestRepository(session).require(request_id)
        return RunRepository(session).require(request.run_id)


# ---------------------------------------------------------------- the gate


def test_a_manual_run_needing_approval_computes_plans_and_writes_nothing(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    detail = requests.get(as_(world, "alice"), request_id)
    assert detail.request.state == "pending" and detail.request.kind == "manual"
    assert detail.request.requested_by == "rita" and detail.request.stores == ("dir",)
    assert [(p.job_name, p.counts.created if p.counts else None) for p in detail.plans] == [("people", 2)]
    assert detail.plans[0].stale is None
    assert detail.eligible == ["alice", "bob"]
    assert people_in_directory(world) == []
    run = run_of(world, request_id)
    assert run.lease_until is None and run.node is None
    assert any(f"request {request_id} awaits approval" in line.message for line in _logs(world, run.id))


def test_a_run_not_covered_by_the_workflow_runs_as_before(world: World) -> None:
    workflow_store(world, scheduled=True)
    report = collection_runs.run_collection(as_(world, "rita"), "c")
    assert report.run.state is RunState.SUCCEEDED
    assert len(people_in_directory(world)) == 2


def test_approval_applies_exactly_the_plan_and_executes_the_request(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    decided = requests.approve(as_(world, "alice"), request_id, comment="looks right")
    assert decided.request.state == "executed"
    assert decided.run is not None and decided.run.state is RunState.SUCCEEDED
    assert decided.run.counts.created == 2
    assert len(people_in_directory(world)) == 2
    trail = requests.get(as_(world, "ann"), request_id).trail
    assert [(t.actor, t.action) for t in trail] == [("alice", "approve"), ("idsync", "execute")]
    assert "run" in (decided.request.outcome or "")


def test_a_manual_run_while_a_request_is_pending_is_refused_naming_it(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    with pytest.raises(StateConflictError, match=f"request {request_id} awaits approval"):
        collection_runs.run_collection(as_(world, "carol"), "c")


def test_a_scheduled_occurrence_with_a_pending_request_records_a_skip_not_a_second_request(world: World) -> None:
    workflow_store(world, manual=True, scheduled=True)
    request_id = raise_request(world)
    world.schedule("nightly", [{"kind": "daily", "start": "2030-01-01T02:00"}])
    schedule_id, _ = schedules.load_schedule(world.ws, "nightly")
    due = occurrence_runs.Due(schedule_id, "nightly", 0, utcnow(), "fired")
    fired = occurrence_runs.fire(world.ws, Runtime(), due, ["c"], trigger="schedule", requested_by="schedule nightly")
    assert fired is not None
    [started] = fired.started
    assert started.state is RunState.SKIPPED
    assert started.reason == f"skipped: request {request_id} awaits approval"
    with world.ws.db.session() as session:
        assert len(RequestRepository(session).list()) == 1


def test_a_scheduled_run_raises_a_request_requested_by_the_schedule(world: World) -> None:
    workflow_store(world, scheduled=True)
    runtime = Runtime()
    started = collection_runs.start_run(world.ws, "c", runtime, trigger="schedule", requested_by="schedule nightly")
    assert started.fence is not None
    run = collection_runs.execute_run(world.ws, started.run_id, started.fence, runtime)
    assert run.state is RunState.AWAITING_APPROVAL
    with world.ws.db.session() as session:
        request = RequestRepository(session).for_run(run.id)
    assert request is not None and request.kind == "schedule" and request.requested_by == "schedule nightly"


# ---------------------------------------------------------------- decisions and roles


def test_the_requester_cannot_approve_even_when_listed(world: World) -> None:
    add_user(world.ws, "rex", ["operator", "approver"])
    workflow_store(world, manual=True, approvers=["alice", "rex"])
    request_id = raise_request(world, "rex")
    with pytest.raises(PermissionDeniedError, match=f"raised request {request_id}"):
        requests.approve(as_(world, "rex"), request_id)


def test_an_approver_not_named_is_refused_until_rerouted_to(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    with pytest.raises(PermissionDeniedError, match="is not an approver of request"):
        requests.approve(as_(world, "dave"), request_id)
    requests.reroute(as_(world, "alice"), request_id, "dave", "alice is away")
    assert requests.approve(as_(world, "dave"), request_id).request.state == "executed"


def test_reroute_to_a_user_who_cannot_approve_is_refused(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    with pytest.raises(ConfigError, match="does not hold the approver role"):
        requests.reroute(as_(world, "alice"), request_id, "carol", "she knows")
    with pytest.raises(PermissionDeniedError, match="cannot be re-routed to its requester"):
        requests.reroute(as_(world, "alice"), request_id, "rita", "hers")


def test_deciding_needs_the_approver_role_and_idsync_itself_never_approves(world: World) -> None:
    workflow_store(world, manual=True, approvers=["alice", "carol"])
    request_id = raise_request(world)
    with pytest.raises(PermissionDeniedError, match="that needs the role approver"):
        requests.approve(as_(world, "carol"), request_id)
    with pytest.raises(PermissionDeniedError, match="that needs the role approver"):
        requests.approve(world.ws.acting_as(Principal.system("scheduler")), request_id)


def test_two_approvals_required_from_distinct_people_and_the_inbox_follows(world: World) -> None:
    workflow_store(world, manual=True, required_approvals=2)
    request_id = raise_request(world)
    alice, bob = as_(world, "alice"), as_(world, "bob")
    assert [r.id for r in requests.list_requests(alice, "inbox")] == [request_id]
    assert requests.inbox_count(bob) == 1
    assert requests.approve(alice, request_id).request.state == "pending"
    assert requests.inbox_count(alice) == 0 and requests.inbox_count(bob) == 1
    with pytest.raises(PermissionDeniedError, match="has approved request"):
        requests.approve(alice, request_id)
    assert people_in_directory(world) == []
    assert requests.approve(bob, request_id).request.state == "executed"
    assert len(people_in_directory(world)) == 2
    assert requests.inbox_count(bob) == 0


def test_a_denial_ends_the_run_denied_and_writes_nothing(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    with pytest.raises(ConfigError, match="needs a reason"):
        requests.deny(as_(world, "bob"), request_id, " ")
    decided = requests.deny(as_(world, "bob"), request_id, "not this week")
    assert decided.request.state == "denied" and decided.request.outcome == "denied by bob: not this week"
    run = run_of(world, request_id)
    assert run.state is RunState.DENIED and "not this week" in (run.error or "")
    assert people_in_directory(world) == []
    with pytest.raises(StateConflictError, match="is denied: no decision can be made"):
        requests.approve(as_(world, "alice"), request_id)
    # closed: the collection runs again (and raises a new request)
    assert raise_request(world) != request_id


def test_only_the_requester_cancels(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    with pytest.raises(PermissionDeniedError, match="only by its requester 'rita'"):
        requests.cancel(as_(world, "alice"), request_id)
    assert requests.cancel(as_(world, "rita"), request_id).request.state == "cancelled"
    assert run_of(world, request_id).state is RunState.CANCELLED


def test_listing_every_request_needs_admin_or_auditor(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    with pytest.raises(PermissionDeniedError, match="list every request"):
        requests.list_requests(as_(world, "carol"), "all")
    assert [r.id for r in requests.list_requests(as_(world, "ann"), "all")] == [request_id]
    assert [r.id for r in requests.list_requests(as_(world, "rita"), "mine")] == [request_id]
    assert requests.list_requests(as_(world, "carol"), "mine") == []
    assert [r.id for r in requests.list_requests(as_(world, "ann"), "all", approver="bob")] == [request_id]
    assert requests.list_requests(as_(world, "ann"), "all", approver="dave") == []
    assert requests.list_requests(as_(world, "ann"), "all", status="denied") == []


def test_a_repreview_computes_fresh_plans_and_restarts_the_approvals(world: World) -> None:
    workflow_store(world, manual=True, required_approvals=2)
    request_id = raise_request(world)
    requests.approve(as_(world, "alice"), request_id)
    before = [p.plan_id for p in requests.get(as_(world, "ann"), request_id).plans]
    (world.root / "people.csv").write_text("id,first,last\n1,Ada,Lovelace\n", encoding="utf-8")
    assert requests.get(as_(world, "ann"), request_id).plans[0].stale == "its source changed since it was computed"
    requests.repreview(as_(world, "rita"), request_id)
    detail = requests.get(as_(world, "ann"), request_id)
    assert [p.plan_id for p in detail.plans] != before and detail.plans[0].stale is None
    assert detail.plans[0].counts is not None and detail.plans[0].counts.created == 1
    assert detail.status.approvals == ()
    requests.approve(as_(world, "alice"), request_id)
    assert requests.approve(as_(world, "bob"), request_id).request.state == "executed"
    assert len(people_in_directory(world)) == 1


def test_a_partial_approval_applies_only_the_kinds_approved(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    decided = requests.approve(as_(world, "alice"), request_id, kinds=["update"])
    assert decided.run is not None
    assert decided.run.counts.not_approved == 2 and decided.run.counts.created == 0
    assert people_in_directory(world) == []
    assert any("2 change(s) of plan" in line.message and "not approved" in line.message
               for child in child_ids(world, decided.run.id) for line in _logs(world, child))


def test_unknown_kinds_are_refused_naming_the_kinds(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    with pytest.raises(ConfigError, match="'drop' is not a kind of change; the kinds are create, update"):
        requests.approve(as_(world, "alice"), request_id, kinds=["drop"])


# ---------------------------------------------------------------- time


def test_the_sweep_expires_an_overdue_request_and_its_run(world: World) -> None:
    workflow_store(world, manual=True, expires_after="1h")
    request_id = raise_request(world)
    later = Runtime(clock=lambda: utcnow() + timedelta(hours=2))
    with pytest.raises(StateConflictError, match="expired at"):
        requests.approve(as_(world, "alice"), request_id, runtime=later)  # before the sweep marked it
    lines = request_runs.sweep(world.ws, later)
    assert lines == [f"request {request_id} of collection 'c' expired"]
    assert run_of(world, request_id).state is RunState.EXPIRED
    with world.ws.db.session() as session:
        assert RequestRepository(session).require(request_id).state == "expired"
    assert people_in_directory(world) == []


def test_escalation_routes_the_request_to_the_escalation_approvers(world: World) -> None:
    workflow_store(world, manual=True, approvers=["alice"], escalation={"after": "1h", "approvers": ["dave"]})
    request_id = raise_request(world)
    assert requests.inbox_count(as_(world, "dave")) == 0
    later = Runtime(clock=lambda: utcnow() + timedelta(hours=2))
    assert request_runs.sweep(world.ws, later) == [f"request {request_id} of collection 'c' escalated"]
    assert request_runs.sweep(world.ws, later) == []  # once per step
    assert requests.inbox_count(as_(world, "dave")) == 1
    assert requests.approve(as_(world, "dave"), request_id).request.state == "executed"


def test_the_sweep_takes_up_an_approved_request_whose_execution_was_interrupted(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    # The approver's process died right after recording the approval.
    record(as_(world, "alice"), request_id, Decision("alice", "approve", utcnow()))
    assert run_of(world, request_id).state is RunState.AWAITING_APPROVAL
    lines = request_runs.sweep(world.ws, Runtime())
    assert lines == [f"request {request_id}: its interrupted execution was taken up"]
    assert run_of(world, request_id).state is RunState.SUCCEEDED
    assert len(people_in_directory(world)) == 2


def test_an_approval_handed_to_the_workers_claims_the_run_and_the_sweep_leaves_it(world: World) -> None:
    """With a hand-off (a server deferring to workers), the approval claims the
    run and hands it over instead of applying; the sweep neither executes it
    again nor closes it; the worker's part applies exactly the plans and closes it."""
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    handed: list[tuple[int, int, int]] = []
    decided = requests.approve(as_(world, "alice"), request_id,
                               hand_off=lambda run_id, fence, rid: handed.append((run_id, fence, rid)))
    assert decided.request.state == "approved" and people_in_directory(world) == []
    assert decided.run is not None and decided.run.state is RunState.RUNNING
    [(run_id, fence, handed_request)] = handed
    assert (run_id, handed_request) == (decided.run.id, request_id)
    assert request_runs.sweep(world.ws, Runtime()) == []
    assert run_of(world, request_id).state is RunState.RUNNING
    run = request_runs.execute_claimed(world.ws, request_id, run_id, fence, Runtime(node="w1"))
    assert run.state is RunState.SUCCEEDED and run.counts.created == 2
    assert requests.get(as_(world, "alice"), request_id).request.state == "executed"
    assert len(people_in_directory(world)) == 2


class HandingExecutor(InlineExecutor):
    """An executor of a node deferring to workers, as far as approvals go: it hands them over."""

    def __init__(self, ws: Workspace, runtime: Runtime) -> None:
        super().__init__(ws, runtime)
        self.handed: list[tuple[int, int, int]] = []

    @property
    def hand_off(self) -> request_runs.HandOff:
        return lambda run_id, fence, request_id: self.handed.append((run_id, fence, request_id))


def test_a_scheduler_that_defers_hands_an_interrupted_approval_to_the_workers(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    record(as_(world, "alice"), request_id, Decision("alice", "approve", utcnow()))  # then its process died
    runtime = Runtime(node="chief")
    executor = HandingExecutor(world.ws.acting_as(Principal.system("scheduler")), runtime)
    Scheduler(executor.ws, executor, runtime).tick()
    run = run_of(world, request_id)
    assert executor.handed == [(run.id, run.fence, request_id)]
    assert run.state is RunState.RUNNING and people_in_directory(world) == []  # the worker applies it


def test_a_run_handed_over_for_another_request_applies_nothing(world: World) -> None:
    workflow_store(world, manual=True)
    request_id = raise_request(world)
    with pytest.raises(StateConflictError, match="is not approved"):
        request_runs.execute_claimed(world.ws, request_id, run_of(world, request_id).id, 1, Runtime())
    assert people_in_directory(world) == []


# ---------------------------------------------------------------- held runs


def test_a_held_run_becomes_a_request_and_approval_releases_it(world: World) -> None:
    workflow_store(world, held=True)
    job = world.define("job", {
        "name": "people", "source": "people",
        "destination": {"store": "dir", "container": PEOPLE},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "cn", "join": {"fields": ["first", "last"]}},
            {"attribute": "sn", "from": "last"},
        ],
        "limits": {"max_creates": 1},
    })
    assert job.limits is not None
    report = collection_runs.run_collection(as_(world, "rita"), "c")
    assert report.run.state is RunState.HELD
    with world.ws.db.session() as session:
        request = RequestRepository(session).for_run(report.run.id)
    assert request is not None and request.kind == "held" and "max" in request.reason
    assert people_in_directory(world) == []
    decided = requests.approve(as_(world, "bob"), request.id)
    assert decided.request.state == "executed"
    assert len(people_in_directory(world)) == 2
    assert run_of(world, request.id).state is RunState.SUCCEEDED


def _logs(world: World, run_id: int) -> list[Any]:
    with world.ws.db.session() as session:
        return RunRepository(session).logs(run_id)


def child_ids(world: World, run_id: int) -> list[int]:
    with world.ws.db.session() as session:
        return [c.id for c in RunRepository(session).children(run_id)]


# ---------------------------------------------------------------- the scheduler


def test_the_scheduler_raises_one_request_skips_the_next_occurrence_and_expires_it(world: World) -> None:
    workflow_store(world, scheduled=True, expires_after="3h")
    world.collection("c", ["people"], schedule="hourly")
    clock = Clock(datetime.now(UTC) + timedelta(seconds=1))
    minute = (clock.now.minute + 30) % 60
    world.schedule("hourly", [{"kind": "cron", "expression": f"{minute} * * * *", "start": wall(clock.now)}], grace="10m")
    runtime = Runtime(clock=clock, lease=timedelta(days=2))
    scheduler = Scheduler(world.ws, InlineExecutor(world.ws, runtime), runtime)
    scheduler.start()

    clock.advance(31 * 60)  # the first occurrence: a request
    first = scheduler.tick()
    assert first.fired == 1 and len(first.started) == 1
    with world.ws.db.session() as session:
        [request] = RequestRepository(session).list()
    assert request.kind == "schedule" and request.requested_by == "schedule hourly"
    assert people_in_directory(world) == []

    clock.advance(3600)  # the next one: skipped, no second request
    second = scheduler.tick()
    assert len(second.skipped) == 1
    assert f"skipped: request {request.id} awaits approval" in "\n".join(second.messages)
    with world.ws.db.session() as session:
        assert len(RequestRepository(session).list()) == 1

    clock.advance(3 * 3600)  # past its expiry: the tick's sweep expires it, then the occurrence raises a new one
    third = scheduler.tick()
    assert f"request {request.id} of collection 'c' expired" in third.messages
    with world.ws.db.session() as session:
        assert RequestRepository(session).require(request.id).state == "expired"
        assert [r.state for r in RequestRepository(session).list()] == ["pending", "expired"]


# ---------------------------------------------------------------- no bypass


def test_a_job_of_a_store_requiring_approval_does_not_run_on_its_own(world: World) -> None:
    workflow_store(world, manual=True)
    with pytest.raises(StateConflictError) as caught:
        jobs.run_job(as_(world, "rita"), "people")
    assert "identity store 'dir' requires approval for manual runs: job 'people' cannot run on its own" in caught.value.message
    preview = jobs.preview_job(as_(world, "rita"), "people")  # a preview writes nothing: allowed
    with pytest.raises(StateConflictError, match="requires approval for manual runs"):
        jobs.run_job(as_(world, "rita"), "people", plan_id=preview.plan.id)
    assert people_in_directory(world) == []


def test_a_held_plan_is_released_by_its_request_not_by_hand(world: World) -> None:
    workflow_store(world, held=True)
    world.define("job", {
        "name": "people", "source": "people",
        "destination": {"store": "dir", "container": PEOPLE},
        "mappings": [{"attribute": "uid", "from": "id", "key": True},
                     {"attribute": "cn", "join": {"fields": ["first", "last"]}},
                     {"attribute": "sn", "from": "last"}],
        "limits": {"max_creates": 1},
    })
    report = collection_runs.run_collection(as_(world, "rita"), "c")
    assert report.run.state is RunState.HELD
    [held] = report.jobs
    assert held.plan_id is not None
    with pytest.raises(StateConflictError, match="requires approval to release held runs"):
        jobs.run_job(as_(world, "rita"), "people", plan_id=held.plan_id)
    assert people_in_directory(world) == []


def test_a_request_nobody_could_approve_is_never_raised(world: World) -> None:
    # The only approver is the requester: she can never approve her own request.
    add_user(world.ws, "erin", ["operator", "approver"])
    workflow_store(world, manual=True, approvers=["erin"])
    report = collection_runs.run_collection(as_(world, "erin"), "c")
    assert report.run.state is RunState.FAILED
    assert report.run.error == (
        "not run: the workflow of dir needs 1 approval(s) but 0 eligible approver(s) other than erin exist; "
        "nothing was applied"
    )
    with world.ws.db.session() as session:
        assert RequestRepository(session).for_run(report.run.id) is None
    assert people_in_directory(world) == []
