"""``idsync serve --workers external --no-scheduler`` and one ``idsync worker``,
as real processes on a fresh PostgreSQL database: a collection run started
through the API, and the run of a request approved through the API, are
executed by the worker, not in the server's process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from idsync.cli.common import os_principal
from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.domain.roles import Role
from idsync.services import directory, tokens, users
from idsync.store.requests_repo import RequestRepository
from idsync.store.runs_repo import RunRepository
from tests.integration.test_store_postgres import server
from tests.integration.test_workers_faults import world
from tests.people import add_user
from tests.scheduler_world import SUFFIX, World
from tests.workers import collection_runs, idsync, stop, wait_until, worker

__all__ = ["server", "world"]

pytestmark = pytest.mark.postgres

PASSWORD = "a password for the tests"
ROLES = {"olivia": [Role.ADMIN, Role.OPERATOR], "rita": [Role.OPERATOR], "alice": [Role.APPROVER]}


class Api:
    """The served API, called with each user's token."""

    def __init__(self, address: str, made: dict[str, str]) -> None:
        self.client = httpx.Client(base_url=address + "/api/v1", timeout=30)
        self.tokens = made

    def post(self, path: str, user: str, expect: int) -> Any:
        response = self.client.post(path, json={}, headers={"Authorization": f"Bearer {self.tokens[user]}"})
        assert response.status_code == expect, response.text
        return response.json()


@pytest.fixture
def api(world: World) -> Iterator[Api]:
    """The users of :data:`ROLES` (olivia is the account running the processes; the
    tests' own principal defines things),
    then ``idsync serve --workers external --no-scheduler`` and worker ``w1``."""
    add_user(world.ws, world.ws.principal.name, ["admin", "operator"])  # who defines things in the tests
    ws = world.ws.acting_as(Principal.system("tests"))
    for name, roles in ROLES.items():
        os_user = os_principal().name if name == "olivia" else None
        users.add_user(ws, name, password=PASSWORD, roles=roles, os_user=os_user)
    admin = ws.acting_as(Principal("olivia", "user"))
    made = {name: tokens.create(admin, "tests", user=name).token for name in ROLES}
    served = idsync(world, "serve", "--port", "0", "--workers", "external", "--no-scheduler", "--quiet",
                    "--shutdown-timeout", "5")
    one = worker(world, "w1", lease="5")
    try:
        yield Api(_address(served), made)
    finally:
        stop(one)
        stop(served)


def _address(served: subprocess.Popen[str]) -> str:
    """The address ``idsync serve`` prints once it listens."""
    assert served.stdout is not None
    for line in served.stdout:
        if line.startswith("idsync serving on "):
            return line.split()[3]
    raise AssertionError(f"serve stopped before it listened: {stop(served)}")


def _log(world: World, run_id: int) -> list[str]:
    with world.ws.db.session() as session:
        return [line.message for line in RunRepository(session).logs(run_id)]


def _uids(world: World) -> list[str]:
    found = directory.search(world.ws, "dir", filterstr="(uid=*)", attributes=["uid"])
    return sorted(entry.dn.split(",", 1)[0] for entry in found)


def _ended(world: World, run_id: int) -> bool:
    return any(r.id == run_id and r.state.finished for r in collection_runs(world))


def test_a_run_started_through_the_api_is_executed_by_the_worker(world: World, api: Api) -> None:
    world.collection("c", ["people"])
    started = api.post("/collections/c/run", "rita", 202)
    assert started["state"] == "running"
    wait_until(lambda: _ended(world, started["run_id"]), what="the run to end")
    [run] = collection_runs(world)
    assert (run.id, run.state, run.node) == (started["run_id"], RunState.SUCCEEDED, "w1")
    assert "taken over by worker w1" in _log(world, run.id)
    assert _uids(world) == ["uid=1", "uid=2"]


def test_a_request_approved_through_the_api_is_applied_by_the_worker(world: World, api: Api) -> None:
    world.define("store", {
        "name": "dir", "kind": "local", "path": str(world.root / "dir.db"), "suffix": SUFFIX,
        "workflow": {"manual": True, "approvers": ["alice"], "required_approvals": 1},
    })
    world.collection("c", ["people"])
    started = api.post("/collections/c/run", "rita", 202)
    run_id = started["run_id"]
    parked = lambda: any(r.id == run_id and r.state is RunState.AWAITING_APPROVAL for r in collection_runs(world))  # noqa: E731
    wait_until(parked, what="the run to await approval")
    with world.ws.db.session() as session:
        request = RequestRepository(session).for_run(run_id)
    assert request is not None and _uids(world) == []

    decided = api.post(f"/requests/{request.id}/approve", "alice", 200)
    assert decided["run"]["id"] == run_id and decided["run"]["state"] == "running"
    wait_until(lambda: _ended(world, run_id), what="the approved run to end")
    [run] = collection_runs(world)
    assert (run.state, run.node) == (RunState.SUCCEEDED, "w1")
    log = _log(world, run_id)
    assert any(line.startswith(f"request {request.id} approved by alice") and line.endswith("on the workers")
               for line in log), log
    assert log.count("taken over by worker w1") == 2  # its preview, then the approved apply

    def executed() -> bool:  # recorded by the worker just after the run ends
        with world.ws.db.session() as session:
            return RequestRepository(session).require(request.id).state == "executed"

    wait_until(executed, what="the request to be recorded executed")
    assert _uids(world) == ["uid=1", "uid=2"]
