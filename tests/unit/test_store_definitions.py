"""Stored definitions of stores, sources and jobs, with their audit trail.

The tests are in a class so the PostgreSQL suite runs them unchanged.
"""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from idsync.domain.results import RunState
from idsync.errors import NotFoundError
from idsync.store import (
    Database,
    DefinitionRepository,
    PlanRepository,
    RunRepository,
    SecretBox,
    list_entries,
)
from idsync.store.definitions_repo import changed_keys
from tests.clock import Clock

BOX = SecretBox(Fernet.generate_key())
LDAP_BODY = {"url": "ldap://127.0.0.1:389", "bind_dn": "cn=admin,dc=example,dc=org", "timeout": 10.0}


class TestDefinitionRepository:
    def test_put_creates_and_get_returns_what_was_stored(self, db: Database) -> None:
        token = BOX.encrypt({"bind_password": "s3cret"})
        clock = Clock()
        with db.session() as session:
            result = DefinitionRepository(session, "store", box=BOX, clock=clock).put(
                "corp", "ldap", LDAP_BODY, token, actor="ann"
            )
        assert result == "created"
        with db.session() as session:
            stored = DefinitionRepository(session, "store").require("corp")
        assert (stored.kind, stored.name, stored.type, stored.body) == ("store", "corp", "ldap", LDAP_BODY)
        assert stored.secrets_token == token
        assert stored.created_at == stored.updated_at == clock.now
        assert stored.created_at.tzinfo is not None

    def test_putting_the_same_definition_again_changes_nothing(self, db: Database) -> None:
        clock = Clock()
        with db.session() as session:
            repo = DefinitionRepository(session, "store", box=BOX, clock=clock)
            repo.put("corp", "ldap", LDAP_BODY, BOX.encrypt({"bind_password": "p"}), actor="ann")
            clock.advance(60)
            # A new token of the same secrets is not a change.
            again = repo.put("corp", "ldap", dict(LDAP_BODY), BOX.encrypt({"bind_password": "p"}), actor="bob")
            stored = repo.require("corp")
            entries = list_entries(session, object_kind="store")
        assert again == "unchanged"
        assert stored.updated_at == stored.created_at
        assert [e.action for e in entries] == ["create"]

    def test_an_update_records_which_keys_changed(self, db: Database) -> None:
        clock = Clock()
        with db.session() as session:
            repo = DefinitionRepository(session, "store", box=BOX, clock=clock)
            repo.put("corp", "ldap", LDAP_BODY, None, actor="ann")
            clock.advance(60)
            body = {**LDAP_BODY, "timeout": 30.0, "base_dn": "dc=example,dc=org"}
            del body["bind_dn"]
            result = repo.put("corp", "ldap", body, None, actor="bob")
            stored = repo.require("corp")
            latest = list_entries(session, object_kind="store", object_name="corp")[0]
        assert result == "updated"
        assert stored.body == body
        assert stored.updated_at == clock.now > stored.created_at
        assert (latest.actor, latest.action) == ("bob", "update")
        assert latest.detail == {"type": "ldap", "changed": ["base_dn", "bind_dn", "timeout"]}

    def test_a_type_change_is_an_update(self, db: Database) -> None:
        with db.session() as session:
            repo = DefinitionRepository(session, "source", box=BOX)
            repo.put("hr", "csv", {"path": "hr.csv"}, None, actor="ann")
            assert repo.put("hr", "tsv", {"path": "hr.csv"}, None, actor="ann") == "updated"
            assert repo.require("hr").type == "tsv"
            assert list_entries(session)[0].detail["changed"] == ["type"]

    def test_changed_secrets_are_audited_without_their_values(self, db: Database) -> None:
        old = BOX.encrypt({"bind_password": "old-secret"})
        new = BOX.encrypt({"bind_password": "new-secret"})
        with db.session() as session:
            repo = DefinitionRepository(session, "store", box=BOX)
            repo.put("corp", "ldap", LDAP_BODY, old, actor="ann")
            result = repo.put("corp", "ldap", LDAP_BODY, new, actor="ann")
            stored = repo.require("corp")
            entries = list_entries(session)
        assert result == "updated"
        assert stored.secrets_token == new
        assert entries[0].detail == {"type": "ldap", "changed": [], "secrets": "secrets changed"}
        everything = json.dumps([e.detail for e in entries])
        for leak in ("old-secret", "new-secret", old, new):
            assert leak not in everything

    def test_removing_secrets_is_a_change(self, db: Database) -> None:
        with db.session() as session:
            repo = DefinitionRepository(session, "store", box=BOX)
            repo.put("corp", "ldap", LDAP_BODY, BOX.encrypt({"bind_password": "p"}), actor="ann")
            assert repo.put("corp", "ldap", LDAP_BODY, None, actor="ann") == "updated"
            assert repo.require("corp").secrets_token is None

    def test_list_is_sorted_by_name(self, db: Database) -> None:
        with db.session() as session:
            repo = DefinitionRepository(session, "job", box=BOX)
            for name in ("payroll", "alumni", "staff"):
                repo.put(name, "sync", {"source": name}, None, actor="ann")
            assert [d.name for d in repo.list()] == ["alumni", "payroll", "staff"]

    def test_each_kind_has_its_own_names(self, db: Database) -> None:
        with db.session() as session:
            DefinitionRepository(session, "store", box=BOX).put("hr", "local", {"path": "hr"}, None, "ann")
            DefinitionRepository(session, "source", box=BOX).put("hr", "csv", {"path": "hr.csv"}, None, "ann")
            assert DefinitionRepository(session, "job").get("hr") is None
            assert DefinitionRepository(session, "store").require("hr").type == "local"
            assert DefinitionRepository(session, "source").require("hr").type == "csv"

    @pytest.mark.parametrize(
        ("kind", "message", "hint"),
        [
            ("store", "no identity store named 'x'", "list the stores"),
            ("source", "no data source named 'x'", "list the sources"),
            ("job", "no job named 'x'", "list the jobs"),
        ],
    )
    def test_require_names_the_kind_and_hints_at_listing_it(
        self, db: Database, kind: str, message: str, hint: str
    ) -> None:
        with db.session() as session:
            repo = DefinitionRepository(session, kind)  # type: ignore[arg-type]
            assert repo.get("x") is None
            with pytest.raises(NotFoundError) as caught:
                repo.require("x")
        assert (caught.value.message, caught.value.hint) == (message, hint)

    def test_an_unknown_kind_is_refused(self, db: Database) -> None:
        with db.session() as session, pytest.raises(ValueError, match="unknown definition kind"):
            DefinitionRepository(session, "widget")  # type: ignore[arg-type]

    def test_remove_deletes_and_is_audited(self, db: Database) -> None:
        with db.session() as session:
            repo = DefinitionRepository(session, "source", box=BOX)
            repo.put("hr", "csv", {"path": "hr.csv"}, None, actor="ann")
            assert repo.remove("hr", actor="bob") is True
            assert repo.remove("hr", actor="bob") is False
            assert repo.get("hr") is None
            entries = list_entries(session, object_name="hr")
        assert [(e.action, e.actor) for e in entries] == [("delete", "bob"), ("create", "ann")]

    def test_a_removed_job_keeps_its_runs_and_plans(self, db: Database) -> None:
        with db.session() as session:
            jobs = DefinitionRepository(session, "job", box=BOX)
            jobs.put("staff", "sync", {"source": "hr"}, None, actor="ann")
            job_id = jobs.require("staff").id
            plan_id = PlanRepository(session).create(job_name="staff", job_id=job_id)
            run_id = RunRepository(session).create(job_name="staff", job_id=job_id, plan_id=plan_id)
        with db.session() as session:
            assert DefinitionRepository(session, "job").remove("staff", actor="ann")
        with db.session() as session:
            run = RunRepository(session).require(run_id)
            plan = PlanRepository(session).require(plan_id)
        assert (run.job_id, run.job_name, run.plan_id, run.state) == (None, "staff", plan_id, RunState.PENDING)
        assert (plan.job_id, plan.job_name) == (None, "staff")

    def test_a_failed_session_stores_neither_the_definition_nor_its_audit_entry(self, db: Database) -> None:
        with pytest.raises(RuntimeError), db.session() as session:
            DefinitionRepository(session, "store", box=BOX).put("corp", "ldap", LDAP_BODY, None, "ann")
            raise RuntimeError("stop")
        with db.session() as session:
            assert DefinitionRepository(session, "store").list() == []
            assert list_entries(session) == []


def test_changed_keys_covers_added_removed_and_changed_keys() -> None:
    assert changed_keys({"a": 1, "b": 2, "c": None}, {"a": 1, "b": 3, "d": 4}) == ["b", "c", "d"]
    assert changed_keys({"a": [1, 2]}, {"a": [1, 2]}) == []
