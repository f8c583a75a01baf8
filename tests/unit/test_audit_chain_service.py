"""What goes into the audit trail besides configuration changes (runs started,
by whom), that secret values never do, and who may check the trails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.errors import PermissionDeniedError
from idsync.services import audit as audit_service
from idsync.services import collection_runs, definitions, jobs, users
from idsync.services.collection_runs import Runtime
from idsync.store import list_entries
from idsync.store.tables import audit_log
from tests.scheduler_world import World, make_world


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path))
    made = make_world(tmp_path)
    yield made
    made.ws.close()


def run_starts(world: World) -> list[tuple[str, str, str, dict[str, Any]]]:
    with world.ws.db.session() as session:
        entries = list_entries(session, limit=1000)
    return [(e.actor, e.object_kind, e.object_name, e.detail) for e in reversed(entries) if e.action == "run.start"]


def test_each_job_run_started_is_audited_with_who_started_it(world: World) -> None:
    run = jobs.run_job(world.ws.acting_as(Principal("alice", "user")), "people", trigger="manual")
    ou, people = run_starts(world)
    assert ou[:3] == ("tester", "job", "ou")
    assert people == ("alice", "job", "people", {"run": run.id, "trigger": "manual", "plan": None})


def test_applying_a_stored_plan_is_audited_with_the_plan(world: World) -> None:
    plan = jobs.preview_job(world.ws, "people").plan
    run = jobs.run_job(world.ws, "people", plan_id=plan.id)
    assert run_starts(world)[-1] == ("tester", "job", "people", {"run": run.id, "trigger": "manual", "plan": plan.id})


def test_each_collection_run_started_is_audited_in_its_transaction(world: World) -> None:
    world.collection("nightly", ["people"])
    started = collection_runs.start_run(world.ws, "nightly", Runtime(), trigger="schedule", requested_by="schedule 'night'")
    assert run_starts(world)[-1] == ("schedule 'night'", "collection", "nightly", {"run": started.run_id, "trigger": "schedule"})


def test_secret_values_never_reach_the_audit_trail(world: World) -> None:
    secret, other = "pw-hunter2-secret", "token-of-the-webhook-42"
    store = {
        "name": "corp", "kind": "ldap", "url": "ldap://127.0.0.1:1", "bind_dn": "cn=admin,dc=example,dc=org",
        "bind_password": secret,
        "notification_server": {
            "host": "127.0.0.1", "port": 9, "tls": "implicit", "sender": "idsync@example.org",
            "username": "mailer", "password": other,
        },
    }
    definitions.save(world.ws, "store", definitions.parse("store", store))
    definitions.save(world.ws, "store", definitions.parse("store", {**store, "bind_password": secret + "-2"}))
    with world.ws.db.session() as session:
        rows = session.execute(select(audit_log).where(audit_log.c.object_name == "corp")).all()
    assert [row.action for row in rows] == ["create", "update"]
    assert rows[1].detail == {"type": "ldap", "changed": [], "secrets": "secrets changed"}
    written = json.dumps([dict(row._mapping) for row in rows], default=str)
    assert secret not in written and other not in written and "hunter2" not in written


def test_the_trails_are_checked_only_by_an_auditor(world: World) -> None:
    users.add_user(world.ws, "boss", roles=[Role.ADMIN])  # no more bootstrap administrator
    with pytest.raises(PermissionDeniedError, match="may not verify the audit trail: that needs the role auditor"):
        audit_service.verify(world.ws.acting_as(Principal("nobody", "user")))
    check = audit_service.verify(world.ws.acting_as(Principal("idsync", "system")))  # administrator and auditor
    assert check.intact and check.problems == ()
    assert [(t.name, t.table) for t in check.trails] == [("audit trail", "audit_log"), ("decision trail", "request_decisions")]
    with world.ws.db.session() as session:
        assert check.trails[0].entries == len(list_entries(session, limit=1000))
