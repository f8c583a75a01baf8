"""Messages of workflow requests through the outbox to a real SMTP server (aiosmtpd):
the approvers are told a request awaits them, reminded once on escalation, and
the requester learns the outcome, each with the request's link."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.runtime.sender import Sender
from idsync.services import collection_runs, request_runs, requests
from idsync.services.collection_runs import Runtime
from idsync.services.workspace import Workspace
from idsync.store.chain import verify
from idsync.store.requests_repo import RequestRepository
from idsync.store.tables import request_decisions, utcnow
from tests.people import add_user
from tests.scheduler_world import SUFFIX, World, make_world
from tests.servers.smtp import SmtpServer

ADDRESSES = {"rita": "rita@example.org", "alice": "alice@example.org", "bob": "bob@example.org",
             "dave": "dave@example.org"}


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IDSYNC_BASE_URL", "https://idsync.example.org/")
    made = make_world(tmp_path)
    add_user(made.ws, "tester", ["admin"])  # the world's own principal, once users exist
    for name, roles in (("rita", ["operator"]), ("alice", ["approver"]), ("bob", ["approver"]), ("dave", ["approver"])):
        add_user(made.ws, name, roles)
    with made.ws.db.session() as session:
        from sqlalchemy import update

        from idsync.store.tables import users

        for name, address in ADDRESSES.items():
            session.execute(update(users).where(users.c.name == name).values(email=address))
    made.collection("c", ["people"])
    yield made
    made.ws.close()


def workflow_store(world: World, port: int, **workflow: Any) -> None:
    world.define("store", {
        "name": "dir", "kind": "local", "path": str(world.root / "dir.db"), "suffix": SUFFIX,
        "notification_server": {"host": "127.0.0.1", "port": port, "tls": "none", "sender": "idsync@example.org",
                                "timeout": 2},
        "workflow": {"approvers": ["alice", "bob"], "manual": True, **workflow},
    })


def as_(world: World, name: str) -> Workspace:
    return world.ws.acting_as(Principal(name, "user"))


def raise_request(world: World) -> int:
    report = collection_runs.run_collection(as_(world, "rita"), "c")
    assert report.run.state is RunState.AWAITING_APPROVAL
    with world.ws.db.session() as session:
        found = RequestRepository(session).for_run(report.run.id)
    assert found is not None
    return found.id


def deliver(world: World, smtp_server: SmtpServer) -> list[tuple[list[str], str, str]]:
    """Deliver what the outbox holds; what the server received since the last call."""
    before = len(smtp_server.messages)
    Sender(world.ws, node="n").send_due()
    return [(m.rcpt_tos, m.subject, m.body()) for m in smtp_server.messages[before:]]


def test_approvers_are_told_then_the_requester_learns_what_was_applied(world: World, smtp_server: SmtpServer) -> None:
    workflow_store(world, smtp_server.port, required_approvals=2)
    request_id = raise_request(world)
    awaiting = deliver(world, smtp_server)
    assert sorted(to for to, _subject, _body in awaiting) == [["alice@example.org"], ["bob@example.org"]]
    for _to, subject, body in awaiting:
        assert subject == f"[idsync] request {request_id} awaits your approval: c (2 created)"
        assert f"https://idsync.example.org/requests/{request_id}" in body
        assert f"idsync request approve {request_id}" in body
        assert "create uid=1,ou=People,dc=example,dc=org (job people)" in body

    requests.approve(as_(world, "alice"), request_id)
    assert deliver(world, smtp_server) == []  # one approval of two: nothing to tell yet
    decided = requests.approve(as_(world, "bob"), request_id, kinds=["update"])
    assert decided.run is not None and decided.run.counts.not_approved == 2
    outcome = deliver(world, smtp_server)
    assert len(outcome) == 1
    to, subject, body = outcome[0]
    assert to == ["rita@example.org"]
    assert subject == f"[idsync] request {request_id} approved and run: c succeeded; no change; 2 changes not approved"
    assert "Approvals:  2 of 2 (alice, bob)" in body
    assert deliver(world, smtp_server) == []  # nothing twice

    with world.ws.db.session() as session:
        assert verify(session, request_decisions).intact


def test_a_denial_tells_the_requester_why(world: World, smtp_server: SmtpServer) -> None:
    workflow_store(world, smtp_server.port)
    request_id = raise_request(world)
    deliver(world, smtp_server)
    requests.deny(as_(world, "bob"), request_id, "the export is from last year")
    [(to, subject, body)] = deliver(world, smtp_server)
    assert to == ["rita@example.org"]
    assert subject == f"[idsync] request {request_id} denied by bob: c"
    assert "Reason: the export is from last year" in body


def test_escalation_reminds_each_approver_once_and_a_reroute_reaches_only_the_new_approver(
    world: World, smtp_server: SmtpServer
) -> None:
    workflow_store(world, smtp_server.port, approvers=["alice"], escalation={"after": "1h", "approvers": ["dave"]})
    request_id = raise_request(world)
    assert [to for to, _s, _b in deliver(world, smtp_server)] == [["alice@example.org"]]

    later = Runtime(clock=lambda: utcnow() + timedelta(hours=2))
    request_runs.sweep(world.ws, later)
    request_runs.sweep(world.ws, later)  # the same step again: no second reminder
    reminders = deliver(world, smtp_server)
    assert sorted(to for to, _s, _b in reminders) == [["alice@example.org"], ["dave@example.org"]]
    assert all(s.startswith(f"[idsync] reminder: request {request_id} still awaits approval") for _t, s, _b in reminders)

    requests.reroute(as_(world, "alice"), request_id, "bob", "bob knows this export")
    assert [to for to, _s, _b in deliver(world, smtp_server)] == [["bob@example.org"]]


def test_expiry_tells_the_requester_nothing_was_applied(world: World, smtp_server: SmtpServer) -> None:
    workflow_store(world, smtp_server.port, expires_after="1h")
    request_id = raise_request(world)
    deliver(world, smtp_server)
    request_runs.sweep(world.ws, Runtime(clock=lambda: utcnow() + timedelta(hours=2)))
    [(to, subject, body)] = deliver(world, smtp_server)
    assert to == ["rita@example.org"]
    assert subject == f"[idsync] request {request_id} expired undecided: c did not run"
    assert "Nothing was applied, and it will never run." in body
