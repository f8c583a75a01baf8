"""Workflow requests against a real slapd: approval applies exactly the plan
it approved, changes since the preview are conflicts, a partial approval
leaves out what it did not approve, a denial writes nothing, a held run is
released by approval [S7.2, S7.4, S4.3]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ldap

from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.services import collection_runs, definitions, history, jobs, requests
from idsync.services.workspace import Workspace
from idsync.store.requests_repo import RequestRepository
from idsync.store.runs_repo import RunRepository
from tests.integration.test_plan_conflicts_slapd import edit, entry
from tests.integration.test_sync_slapd import add_source, people, ws
from tests.people import add_user
from tests.servers.slapd import SlapdServer, write_count

__all__ = ["ws"]


def setup(ws: Workspace, slapd: SlapdServer, tmp_path: Path, *, limits: dict[str, Any] | None = None,
          **workflow: Any) -> str:
    """Store ``ldap`` without a workflow, 10 people synced into a fresh
    container, then the store's workflow set and the source changed: 3 people
    gone (deletes), 2 with a new mail (updates), 2 new (creates)."""
    container = slapd.new_container()
    store = {"name": "ldap", "kind": "ldap", "url": slapd.url, "bind_dn": slapd.root_dn, "bind_password": slapd.root_pw}
    definitions.save(ws, "store", definitions.parse("store", store))
    add_source(ws, tmp_path / "hr.csv", people(10))
    job: dict[str, Any] = {
        "name": "people", "source": "hr",
        "destination": {"store": "ldap", "container": container},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "cn", "join": {"fields": ["first", "last"]}},
            {"attribute": "sn", "from": "last"},
            {"attribute": "mail", "from": "mail", "transforms": ["lower"]},
        ],
        "actions": {"on_missing": "delete"},
    }
    jobs.save_job(ws, definitions.parse("job", job))
    assert jobs.run_job(ws, "people").counts.created == 10
    if limits:
        jobs.save_job(ws, definitions.parse("job", {**job, "limits": limits}))
    add_user(ws, ws.principal.name, ["admin"])  # who set this up stays an administrator
    for name, roles in (("rita", ["operator"]), ("alice", ["approver"]), ("bob", ["approver"])):
        add_user(ws, name, roles)
    definitions.save(ws, "store", definitions.parse("store", {**store, "workflow": {"approvers": ["alice", "bob"], **workflow}}))
    definitions.save(ws, "collection", definitions.parse("collection", {"name": "c", "jobs": ["people"]}))
    rows = people(12)[3:]  # E0000-E0002 gone, E0010-E0011 new
    rows = [r.replace("User4@", "Moved4@").replace("User5@", "Moved5@") for r in rows]
    add_source(ws, tmp_path / "hr.csv", rows)
    return container


def as_(ws: Workspace, name: str) -> Workspace:
    return ws.acting_as(Principal(name, "user"))


def uids(slapd: SlapdServer, container: str) -> list[str]:
    conn = slapd.connect()
    try:
        found = conn.search_s(container, ldap.SCOPE_ONELEVEL, "(objectClass=inetOrgPerson)", ["uid"])
    finally:
        conn.unbind_s()
    return sorted(attrs["uid"][0].decode() for _dn, attrs in found)


def raise_request(ws: Workspace) -> tuple[int, int]:
    """Run the collection as rita: (request id, plan id)."""
    report = collection_runs.run_collection(as_(ws, "rita"), "c")
    assert report.run.state is RunState.AWAITING_APPROVAL, report.run.error
    with ws.db.session() as session:
        request = RequestRepository(session).for_run(report.run.id)
        assert request is not None
        [plan] = RequestRepository(session).plans(request.id)
    assert plan.plan_id is not None
    return request.id, plan.plan_id


def job_run(ws: Workspace, collection_run_id: int) -> Any:
    with ws.db.session() as session:
        [child] = RunRepository(session).children(collection_run_id)
        return child, RunRepository(session).logs(child.id)


def test_approval_applies_exactly_the_plan(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    container = setup(ws, slapd, tmp_path, manual=True)
    writes = write_count(slapd)
    request_id, plan_id = raise_request(ws)
    assert write_count(slapd) == writes, "raising a request writes nothing"
    planned = {(c.op.value, c.dn) for c in history.plan_changes(ws, plan_id)}
    assert len(planned) == 7
    # The source changes after the preview: the approval applies the plan, not the file.
    add_source(ws, tmp_path / "hr.csv", people(1))

    decided = requests.approve(as_(ws, "alice"), request_id)
    assert decided.request.state == "executed" and decided.run is not None
    assert decided.run.state is RunState.SUCCEEDED
    counts = decided.run.counts
    assert (counts.created, counts.updated, counts.deleted, counts.not_approved) == (2, 2, 3, 0)
    assert write_count(slapd) == writes + 7
    assert uids(slapd, container) == [f"E{i:04d}" for i in range(3, 12)]
    assert entry(slapd, f"uid=E0004,{container}")["mail"] == [b"moved4@example.org"]
    assert history.get_plan(ws, plan_id).state == "applied"


def test_an_object_changed_since_the_preview_is_a_conflict_left_untouched(
    ws: Workspace, slapd: SlapdServer, tmp_path: Path
) -> None:
    container = setup(ws, slapd, tmp_path, manual=True)
    request_id, _plan = raise_request(ws)
    edit(slapd, f"uid=E0004,{container}", "mail", "edited4@example.org")
    decided = requests.approve(as_(ws, "alice"), request_id)
    assert decided.run is not None and decided.run.state is RunState.COMPLETED_WITH_ERRORS
    assert (decided.run.counts.updated, decided.run.counts.conflicts) == (1, 1)
    assert entry(slapd, f"uid=E0004,{container}")["mail"] == [b"edited4@example.org"]
    assert entry(slapd, f"uid=E0005,{container}")["mail"] == [b"moved5@example.org"]


def test_a_partial_approval_without_deletes_leaves_every_delete_undone_and_reports_them(
    ws: Workspace, slapd: SlapdServer, tmp_path: Path
) -> None:
    container = setup(ws, slapd, tmp_path, manual=True, required_approvals=2)
    request_id, _plan = raise_request(ws)
    requests.approve(as_(ws, "alice"), request_id, kinds=["create", "update", "delete"],
                     exclude=[f"uid=E0011,{container}"])
    decided = requests.approve(as_(ws, "bob"), request_id, kinds=["create", "update"])
    assert decided.run is not None and decided.run.state is RunState.SUCCEEDED
    counts = decided.run.counts
    # the intersection: creates and updates (bob), minus E0011 (alice)
    assert (counts.created, counts.updated, counts.deleted, counts.not_approved) == (1, 2, 0, 4)
    assert uids(slapd, container) == [f"E{i:04d}" for i in range(0, 11)]
    _child, logs = job_run(ws, decided.run.id)
    [line] = [log.message for log in logs if "not approved" in log.message]
    assert line.startswith("4 change(s) of plan")
    for uid in ("E0000", "E0001", "E0002", "E0011"):
        assert uid.lower() in line.lower()


def test_a_denial_writes_nothing(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    container = setup(ws, slapd, tmp_path, manual=True)
    before = uids(slapd, container)
    writes = write_count(slapd)
    request_id, plan_id = raise_request(ws)
    decided = requests.deny(as_(ws, "bob"), request_id, "not before the audit")
    assert decided.request.state == "denied"
    assert write_count(slapd) == writes
    assert uids(slapd, container) == before
    with ws.db.session() as session:
        run = RunRepository(session).require(decided.request.run_id)
    assert run.state is RunState.DENIED
    assert history.get_plan(ws, plan_id).state == "ready"


def test_a_held_run_is_released_by_approval(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    container = setup(ws, slapd, tmp_path, limits={"max_deletes": 1}, held=True)
    writes = write_count(slapd)
    report = collection_runs.run_collection(as_(ws, "rita"), "c")
    assert report.run.state is RunState.HELD
    assert write_count(slapd) == writes
    with ws.db.session() as session:
        request = RequestRepository(session).for_run(report.run.id)
    assert request is not None and request.kind == "held"
    decided = requests.approve(as_(ws, "alice"), request.id)
    assert decided.request.state == "executed"
    assert uids(slapd, container) == [f"E{i:04d}" for i in range(3, 12)]
    with ws.db.session() as session:
        assert RunRepository(session).require(report.run.id).state is RunState.SUCCEEDED

