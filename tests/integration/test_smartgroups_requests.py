"""A smart group update held at a limit becomes a request holding its membership plan,
when the store's workflow covers held runs; approving it applies exactly that plan,
on slapd and on the embedded directory [S8.3, S7.2]."""

from __future__ import annotations

from typing import Any

from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.notify.events import RunEvent
from idsync.services import (
    collection_runs,
    collections,
    definitions,
    history,
    notifications,
    requests,
    smartgroup_runs,
    smartgroups,
)
from idsync.services.request_gate import smart_group_subject
from idsync.store.requests_repo import RequestRepository
from idsync.store.runs_repo import RunRepository
from tests.integration.test_smartgroups_slapd import Env, _group, _query, env
from tests.people import add_user

__all__ = ["env"]


def _workflow(env: Env, **workflow: Any) -> None:
    add_user(env.ws, env.ws.principal.name, ["admin"])
    add_user(env.ws, "alice", ["approver"])
    definitions.save(env.ws, "store", definitions.parse("store", {
        **env.store, "workflow": {"approvers": ["alice"], **workflow},
    }))


def _two_guarded_groups(env: Env) -> None:
    """Groups 'a' (guard 30 %) and 'b' (at most 5 members) of 5 IT people, then a sixth
    joins IT: 'a' changes by 20 % (updated), 'b' would have 6 members (held at max_members)."""
    env.write_people([(f"u{i}", "IT") for i in range(5)])
    env.sync()
    a, b = env.add_group("a"), env.add_group("b")
    _group(env, "a", a, queries=_query(env, "(departmentNumber=IT)"), guard={"percent": 30, "min_size": 3})
    _group(env, "b", b, queries=_query(env, "(departmentNumber=IT)"), max_members=5)
    smartgroups.save_job(env.ws, definitions.parse("smart_group_job", {"name": "groups", "store": "dir", "groups": ["a", "b"]}))
    assert smartgroup_runs.run_update_job(env.ws, "groups").run.state is RunState.SUCCEEDED
    env.write_people([("u0", "IT"), ("u1", "IT"), ("u2", "IT"), ("u3", "IT"), ("u4", "IT"), ("u5", "IT")])
    env.sync()


def test_without_a_workflow_a_held_group_is_only_refused(env: Env) -> None:
    _two_guarded_groups(env)
    report = smartgroup_runs.run_update_job(env.ws, "groups")
    assert [r.outcome for r in report.groups] == ["updated", "refused"]  # a: 1 of 5 is 20 %; b: 6 > 5
    with env.ws.db.session() as session:
        assert RequestRepository(session).for_run(report.run.id) is None


def test_a_held_update_becomes_a_request_and_approval_applies_exactly_its_plan(env: Env) -> None:
    env.write_people([(f"u{i}", "IT") for i in range(5)])
    env.sync()
    a, b = env.add_group("a"), env.add_group("b")
    _group(env, "a", a, queries=_query(env, "(departmentNumber=IT)"), guard={"percent": 30, "min_size": 3})
    _group(env, "b", b, queries=_query(env, "(departmentNumber=IT)"), guard={"percent": 30, "min_size": 3})
    smartgroups.save_job(env.ws, definitions.parse("smart_group_job", {"name": "groups", "store": "dir", "containers": [env.groups]}))
    assert smartgroup_runs.run_update_job(env.ws, "groups").run.state is RunState.SUCCEEDED
    _workflow(env, held=True)
    env.write_people([("u0", "IT"), ("u1", "IT"), ("u2", "IT"), ("u3", "Sales"), ("u4", "Sales"), ("u5", "IT")])
    env.sync()

    report = smartgroup_runs.run_update_job(env.ws, "groups")
    assert report.run.state is RunState.COMPLETED_WITH_ERRORS
    assert [(r.group, r.outcome) for r in report.groups] == [("a", "held"), ("b", "held")]
    assert "held for approval by request" in (report.groups[0].error or "")
    assert env.uids(a) == env.uids(b) == {f"u{i}" for i in range(5)}  # nothing written
    with env.ws.db.session() as session:
        request = RequestRepository(session).for_run(report.run.id)
        assert request is not None
        [bound] = RequestRepository(session).plans(request.id)
    assert (request.kind, request.collection_name, request.stores) == ("held", smart_group_subject("groups"), ("dir",))
    assert "3 of 5 members (60.0 %)" in request.reason
    assert bound.plan_id is not None
    changes = list(history.plan_changes(env.ws, bound.plan_id))
    assert [(c.key, sorted(v.split(",")[0] for m in c.mods for v in m.values)) for c in changes] == [
        ("a", ["uid=u3", "uid=u4", "uid=u5"]), ("b", ["uid=u3", "uid=u4", "uid=u5"]),
    ]

    # Someone adds u9 to IT meanwhile: approval applies the plan as it was, not a fresh computation.
    env.write_people([("u0", "IT"), ("u1", "IT"), ("u2", "IT"), ("u3", "Sales"), ("u4", "Sales"), ("u5", "IT"), ("u9", "IT")])
    env.sync()
    alice = env.ws.acting_as(Principal("alice", "user"))
    decided = requests.approve(alice, request.id, exclude=[b])  # the approver leaves group b out
    assert decided.request.state == "executed", decided.request
    assert env.uids(a) == {"u0", "u1", "u2", "u5"}
    assert env.uids(b) == {f"u{i}" for i in range(5)}
    assert decided.run is not None and decided.run.trigger == "release" and decided.run.kind == "smartgroup"
    results = {r.group: r for r in smartgroup_runs.results_of(env.ws, decided.run.id)}
    assert (results["a"].outcome, results["a"].added, results["a"].removed) == ("updated", 1, 2)
    assert results["b"].outcome == "excluded"
    with env.ws.db.session() as session:
        assert RunRepository(session).require(decided.run.id).state is RunState.SUCCEEDED
    assert "approved" not in requests.get(env.ws, request.id).request.state  # closed: executed


def test_a_second_held_run_while_one_is_pending_raises_no_second_request(env: Env) -> None:
    _two_guarded_groups(env)
    _workflow(env, held=True)
    first = smartgroup_runs.run_update_job(env.ws, "groups")
    assert [r.outcome for r in first.groups] == ["updated", "held"]
    assert "over the maximum of 5" in (first.groups[1].error or "")
    second = smartgroup_runs.run_update_job(env.ws, "groups")
    assert [r.outcome for r in second.groups] == ["unchanged", "refused"]
    with env.ws.db.session() as session:
        assert RequestRepository(session).for_run(second.run.id) is None
        logs = [line.message for line in RunRepository(session).logs(second.run.id)]
    assert any("no request raised for the held groups" in m for m in logs)


def _nightly(env: Env) -> None:
    collections.save_collection(env.ws, definitions.parse("collection", {
        "name": "nightly", "jobs": ["people"], "smart_group_jobs": ["groups"],
    }))


def _event(env: Env, run_id: int) -> RunEvent:
    with env.ws.db.session() as session:
        runs = RunRepository(session)
        return notifications.build_event(session, runs.require(run_id), runs.children(run_id))


def test_a_group_held_in_a_collection_run_holds_the_collection_run_and_is_named(env: Env) -> None:
    _two_guarded_groups(env)
    _nightly(env)
    report = collection_runs.run_collection(env.ws, "nightly")
    assert report.run.state is RunState.HELD, report.run.error
    assert "smart group update job 'groups' held: smart group 'b'" in (report.run.error or "")
    assert "over the maximum of 5" in (report.run.error or "")
    [_people, update] = report.jobs
    assert (update.kind, update.state, update.plan_id) == ("smartgroup", RunState.HELD, None)  # no workflow: no plan
    event = _event(env, report.run.id)
    assert [(h.job, h.plan_id) for h in event.held] == [("groups", None)]
    assert "smart group 'b'" in event.held[0].reason
    assert {(g.group, g.outcome) for g in event.groups} == {("a", "updated"), ("b", "refused")}
    with env.ws.db.session() as session:
        assert RequestRepository(session).for_run(report.run.id) is None


def test_a_collection_s_held_group_is_in_the_collection_s_request(env: Env) -> None:
    _two_guarded_groups(env)
    _nightly(env)
    _workflow(env, held=True)
    a, b = f"cn=a,{env.groups}", f"cn=b,{env.groups}"
    report = collection_runs.run_collection(env.ws, "nightly")
    assert report.run.state is RunState.HELD, report.run.error
    [_people, update] = report.jobs
    assert update.state is RunState.HELD and update.plan_id is not None
    assert env.uids(b) == {f"u{i}" for i in range(5)}  # b held: nothing written
    assert env.uids(a) == {f"u{i}" for i in range(6)}  # a within its guard: written
    with env.ws.db.session() as session:
        request = RequestRepository(session).for_run(report.run.id)
        assert request is not None
        bound = RequestRepository(session).plans(request.id)
    assert (request.kind, request.collection_name) == ("held", "nightly")
    assert [(p.job_name, p.plan_id) for p in bound] == [(smart_group_subject("groups"), update.plan_id)]
    event = _event(env, report.run.id)
    assert [h.job for h in event.held] == ["groups"]
    assert {(g.group, g.outcome) for g in event.groups} == {("a", "updated"), ("b", "held")}

    alice = env.ws.acting_as(Principal("alice", "user"))
    decided = requests.approve(alice, request.id)
    assert decided.request.state == "executed", decided.request
    assert env.uids(b) == {f"u{i}" for i in range(6)}
    with env.ws.db.session() as session:
        runs = RunRepository(session)
        settled = runs.require(report.run.id)
        assert runs.require(update.id).state is RunState.SUCCEEDED
    assert settled.state is RunState.SUCCEEDED, settled.error


def test_approval_can_leave_single_members_out_of_a_held_group(env: Env) -> None:
    env.write_people([(f"u{i}", "IT") for i in range(5)])
    env.sync()
    a = env.add_group("a")
    _group(env, "a", a, queries=_query(env, "(departmentNumber=IT)"), guard={"percent": 30, "min_size": 3})
    smartgroups.save_job(env.ws, definitions.parse("smart_group_job", {"name": "groups", "store": "dir", "groups": ["a"]}))
    assert smartgroup_runs.run_update_job(env.ws, "groups").run.state is RunState.SUCCEEDED
    _workflow(env, held=True)
    env.write_people([("u0", "IT"), ("u1", "IT"), ("u2", "IT"), ("u3", "Sales"), ("u4", "Sales"), ("u5", "IT")])
    env.sync()
    report = smartgroup_runs.run_update_job(env.ws, "groups")
    assert [r.outcome for r in report.groups] == ["held"]
    with env.ws.db.session() as session:
        request = RequestRepository(session).for_run(report.run.id)
    assert request is not None

    alice = env.ws.acting_as(Principal("alice", "user"))
    decided = requests.approve(alice, request.id, exclude=[f"{a};{env.dn('u3')}"])  # u3 stays in the group
    assert decided.request.state == "executed", decided.request
    assert env.uids(a) == {"u0", "u1", "u2", "u3", "u5"}
    assert decided.run is not None
    [result] = smartgroup_runs.results_of(env.ws, decided.run.id)
    assert (result.outcome, result.added, result.removed) == ("updated", 1, 1)
    assert "1 member change(s) not approved" in (result.error or "")
