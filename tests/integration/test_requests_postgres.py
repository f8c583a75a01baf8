"""Requests on a real PostgreSQL: decisions made at the same moment by two
processes are serialised by the trail's advisory lock, so two approvals of a
request needing two approve it exactly once, and the trail stays one chain.
The session database and its fixtures are those of the store's PostgreSQL suite.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.services import collection_runs, requests
from idsync.services.workspace import Workspace
from idsync.store import Database
from idsync.store.chain import ZERO_HASH as GENESIS
from idsync.store.chain import content_of, row_hash
from idsync.store.requests_repo import RequestRepository
from idsync.store.tables import request_decisions
from tests.integration.test_store_postgres import db, migrated, pg_url, server
from tests.people import add_user
from tests.scheduler_world import SUFFIX, World, make_world

__all__ = ["db", "migrated", "pg_url", "server"]

pytestmark = pytest.mark.postgres


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: Database) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    made = make_world(tmp_path, database_url=db.url)
    add_user(made.ws, made.ws.principal.name, ["admin"])  # who set this up stays an administrator
    for name, roles in (("rita", ["operator"]), ("alice", ["approver"]), ("bob", ["approver"])):
        add_user(made.ws, name, roles)
    made.define("store", {
        "name": "dir", "kind": "local", "path": str(tmp_path / "dir.db"), "suffix": SUFFIX,
        "workflow": {"manual": True, "approvers": ["alice", "bob"], "required_approvals": 2},
    })
    made.collection("c", ["people"])
    yield made
    made.ws.close()


def test_two_approvals_at_once_approve_and_execute_the_request_once(world: World) -> None:
    report = collection_runs.run_collection(world.ws.acting_as(Principal("rita", "user")), "c")
    assert report.run.state is RunState.AWAITING_APPROVAL
    with world.ws.db.session() as session:
        request = RequestRepository(session).for_run(report.run.id)
    assert request is not None
    start = threading.Barrier(2)
    results: dict[str, requests.Decided] = {}
    errors: list[BaseException] = []

    def approve(name: str) -> None:
        ws = Workspace(database_url=world.ws.database_url, principal=Principal(name, "user"))
        try:
            start.wait()
            results[name] = requests.approve(ws, request.id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            ws.close()

    threads = [threading.Thread(target=approve, args=(name,)) for name in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(1 for decided in results.values() if decided.run is not None) == 1
    with world.ws.db.session() as session:
        repo = RequestRepository(session)
        assert repo.require(request.id).state == "executed"
        rows = repo.trail()
    assert sorted((r.actor, r.action) for r in rows) == [("alice", "approve"), ("bob", "approve"), ("idsync", "execute")]
    previous = GENESIS
    for row in rows:
        assert row.prev_hash == previous
        assert row.hash == row_hash(row.prev_hash, content_of(request_decisions, {
            "request_id": row.request_id, "at": row.at, "actor": row.actor, "action": row.action,
            "comment": row.comment, "detail": row.detail,
        }))
        previous = row.hash
