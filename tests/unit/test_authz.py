"""Who may do what: the bootstrap administrator, mapped accounts, and the role checks of the services."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.errors import PermissionDeniedError
from idsync.services import accounts, authz, database, definitions, history, jobs, outbox, users
from idsync.services.workspace import Workspace
from idsync.store import Database
from tests.unit.test_users import fresh_workspace, with_admin


@pytest.fixture
def ws(tmp_path: Path, tmp_home: Path, migrated_sqlite: Path) -> Workspace:
    return fresh_workspace(tmp_path, migrated_sqlite)


def test_before_any_user_exists_whoever_acts_is_the_bootstrap_administrator(ws: Workspace) -> None:
    found = authz.rights(ws)
    assert found.bootstrap and found.user is None
    assert found.roles == {Role.ADMIN, Role.OPERATOR, Role.AUDITOR}  # never approver
    assert not authz.rights(ws.acting_as(Principal("tester"))).roles.isdisjoint({Role.ADMIN})


def test_once_users_exist_an_unmapped_account_may_do_nothing(ws: Workspace) -> None:
    with_admin(ws, "boss")
    stranger = ws.acting_as(Principal("mallory", "os-user"))
    assert authz.rights(stranger).roles == frozenset()
    with pytest.raises(PermissionDeniedError) as refused:
        definitions.list_definitions(stranger, "job")
    assert refused.value.message.startswith("account 'mallory' may not read sync jobs")
    assert refused.value.hint and "not mapped to an idsync user" in refused.value.hint
    with pytest.raises(PermissionDeniedError, match=r"^'ghost' may not read sync jobs"):
        definitions.list_definitions(ws.acting_as(Principal("ghost", "user")), "job")  # no such user


def test_the_account_mapped_to_a_user_acts_as_that_user(ws: Workspace) -> None:
    with_admin(ws, "boss")  # mapped to the OS account root
    assert accounts.os_account_principal(ws) == Principal("boss", "user")
    assert accounts.os_account_principal(ws.acting_as(Principal("nobody", "os-user"))) == Principal("nobody", "os-user")
    assert authz.rights(ws).user is not None  # the os-user principal itself is mapped too


def test_an_auditor_reads_but_is_refused_changes_naming_the_role(ws: Workspace) -> None:
    boss = with_admin(ws)
    users.add_user(boss, "audrey", roles=[Role.AUDITOR])
    audrey = ws.acting_as(Principal("audrey", "user"))
    assert definitions.list_definitions(audrey, "store") == []
    assert history.list_runs(audrey) == [] and outbox.list_messages(audrey) == []
    store = definitions.parse("store", {"name": "dir", "kind": "local", "path": "d.db"})
    with pytest.raises(PermissionDeniedError,
                       match=r"^user 'audrey' may not save identity stores: that needs the role operator \(user 'audrey' has auditor\)$"):
        definitions.save(audrey, "store", store)
    definitions.save(boss, "store", store)
    for attempt, needed in (
        (lambda: definitions.remove(audrey, "store", "dir"), "operator"),
        (lambda: jobs.run_job(audrey, "people"), "operator"),
        (lambda: jobs.preview_job(audrey, "people"), "operator"),
        (lambda: outbox.purge(audrey), "operator"),
        (lambda: users.add_user(audrey, "x"), "admin"),
    ):
        with pytest.raises(PermissionDeniedError, match=f"that needs the role {needed} "):
            attempt()


def test_an_operator_changes_definitions_but_not_users(ws: Workspace) -> None:
    boss = with_admin(ws)
    users.add_user(boss, "olga", roles=[Role.OPERATOR])
    olga = ws.acting_as(Principal("olga", "user"))
    definitions.save(olga, "store", definitions.parse("store", {"name": "dir", "kind": "local", "path": "d.db"}))
    assert [s.name for s in definitions.list_definitions(olga, "store")] == ["dir"]
    with pytest.raises(PermissionDeniedError, match="that needs the role admin"):
        users.grant(olga, "olga", [Role.ADMIN])


def test_an_approver_may_read_but_not_run(ws: Workspace) -> None:
    boss = with_admin(ws)
    users.add_user(boss, "ann", roles=[Role.APPROVER])
    ann = ws.acting_as(Principal("ann", "user"))
    assert history.list_plans(ann) == []
    history.list_audit(ann)
    with pytest.raises(PermissionDeniedError, match="that needs the role operator"):
        jobs.run_job(ann, "people")


def test_a_system_principal_acts_without_users(ws: Workspace) -> None:
    with_admin(ws)
    system = ws.acting_as(Principal.system("scheduler"))
    assert authz.rights(system).roles == {Role.ADMIN, Role.OPERATOR, Role.AUDITOR}
    assert definitions.list_definitions(system, "job") == []


def test_upgrading_the_schema_needs_an_admin_once_users_exist(ws: Workspace) -> None:
    with_admin(ws)
    ws.close()
    stranger = ws.acting_as(Principal("mallory", "os-user"))
    with pytest.raises(PermissionDeniedError, match="may not upgrade the database schema: that needs the role admin"):
        database.upgrade_schema(stranger)
    assert not database.upgrade_schema(ws).changed


def test_a_database_from_before_users_is_upgraded_by_whoever_opens_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Database(url)
    old.upgrade("0006")
    old.dispose()
    stranger = Workspace(principal=Principal("mallory", "os-user"), database_url=url)
    assert accounts.os_account_principal(stranger) == stranger.principal  # no users table: nobody is mapped
    done = database.upgrade_schema(stranger)
    assert done.before == "0006" and done.changed


def test_reading_a_plan_export_needs_a_role(ws: Workspace) -> None:
    with_admin(ws)
    with pytest.raises(PermissionDeniedError, match="may not read plans"):
        history.export_plan(ws.acting_as(Principal("mallory", "os-user")), 1, "json", io.StringIO())
