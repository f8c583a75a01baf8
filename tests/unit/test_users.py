"""Users and their roles: adding, passwords, disabling, removing, grants, role groups, the audit trail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.errors import ConfigError, NotFoundError, PermissionDeniedError, StateConflictError
from idsync.services import definitions, signin, users
from idsync.services.workspace import Workspace
from idsync.store import audit
from idsync.store.tables import users as users_table
from idsync.store.users_repo import UserRepository
from tests.unit.conftest import copy_migrated

PASSWORD = "correct horse battery"


def fresh_workspace(tmp_path: Path, migrated_sqlite: Path) -> Workspace:
    """A workspace with no user yet, acting as the OS account ``root`` (the bootstrap administrator)."""
    return Workspace(principal=Principal("root", "os-user"),
                     database_url=copy_migrated(migrated_sqlite, tmp_path / "idsync.db"))


@pytest.fixture
def ws(tmp_path: Path, tmp_home: Path, migrated_sqlite: Path) -> Workspace:
    return fresh_workspace(tmp_path, migrated_sqlite)


def with_admin(ws: Workspace, name: str = "boss") -> Workspace:
    """*ws* after adding the first user, an admin mapped to its OS account; that user's view."""
    users.add_user(ws, name, os_user=ws.actor, roles=[Role.ADMIN], password=PASSWORD)
    return ws.acting_as(Principal(name, "user"))


def audit_actions(ws: Workspace) -> list[tuple[str, str, str]]:
    with ws.db.session() as session:
        return [(e.actor, e.action, e.object_name) for e in reversed(audit.list_entries(session))]


def test_the_first_user_must_be_an_admin(ws: Workspace) -> None:
    with pytest.raises(StateConflictError, match=r"the first user .* must hold the role admin"):
        users.add_user(ws, "alice", roles=[Role.APPROVER])
    boss = with_admin(ws)
    users.add_user(boss, "alice", roles=[Role.APPROVER])
    assert [d.user.name for d in users.list_users(boss)] == ["alice", "boss"]


def test_a_user_is_added_with_its_roles_and_audited_without_its_password(ws: Workspace) -> None:
    boss = with_admin(ws)
    detail = users.add_user(boss, "alice", display_name="Alice A", email="a@example.org", os_user="alice",
                            roles=[Role.APPROVER, Role.OPERATOR], password="alices secret")
    assert detail.roles == ["approver", "operator"] and detail.has_password
    shown = users.show_user(boss, "alice")
    assert (shown.user.email, shown.user.os_user, shown.user.source) == ("a@example.org", "alice", "local")
    assert {g.granted_by for g in shown.grants} == {"boss"}
    assert audit_actions(boss) == [("root", "user.add", "boss"), ("boss", "user.add", "alice")]
    with ws.db.session() as session:
        everything = json.dumps([e.detail for e in audit.list_entries(session)])
        stored = session.execute(select(users_table.c.password_hash).where(users_table.c.name == "alice")).scalar_one()
    assert "alices secret" not in everything and "alices secret" not in stored
    assert stored.startswith("$argon2id$")


def test_names_and_os_accounts_are_unique(ws: Workspace) -> None:
    boss = with_admin(ws)
    with pytest.raises(StateConflictError, match="user 'boss' already has the name 'boss'"):
        users.add_user(boss, "boss")
    with pytest.raises(StateConflictError, match="user 'boss' already has the os_user 'root'"):
        users.add_user(boss, "other", os_user="root")
    with pytest.raises(ConfigError, match="user name 'a b' is not valid"):
        users.add_user(boss, "a b")


def test_a_short_password_is_refused(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="at least 8 characters"):
        users.add_user(ws, "boss", roles=[Role.ADMIN], password="short")


def test_only_an_admin_manages_users(ws: Workspace) -> None:
    boss = with_admin(ws)
    users.add_user(boss, "olga", roles=[Role.OPERATOR])
    olga = ws.acting_as(Principal("olga", "user"))
    for attempt in (
        lambda: users.add_user(olga, "x"),
        lambda: users.list_users(olga),
        lambda: users.show_user(olga, "boss"),
        lambda: users.grant(olga, "olga", [Role.ADMIN]),
        lambda: users.set_disabled(olga, "boss", True),
        lambda: users.remove_user(olga, "boss"),
        lambda: users.add_role_group(olga, "corp", "cn=g", Role.ADMIN),
    ):
        with pytest.raises(PermissionDeniedError, match="that needs the role admin"):
            attempt()
    assert users.show_user(olga, "olga").roles == ["operator"]  # a user sees itself


def test_changing_ones_own_password_needs_the_old_one(ws: Workspace) -> None:
    boss = with_admin(ws)
    users.add_user(boss, "alice", roles=[Role.APPROVER], password="first password")
    alice = ws.acting_as(Principal("alice", "user"))
    with pytest.raises(PermissionDeniedError, match="current password"):
        users.change_password(alice, "alice", "second password")
    with pytest.raises(PermissionDeniedError, match="current password"):
        users.change_password(alice, "alice", "second password", old="wrong password")
    users.change_password(alice, "alice", "second password", old="first password")
    assert signin.authenticate(ws, "alice", "second password") == Principal("alice", "user")
    with pytest.raises(PermissionDeniedError, match="that needs the role admin"):
        users.change_password(alice, "boss", "taken over!")
    users.change_password(boss, "alice", "set by the admin")  # an admin needs no old password
    assert signin.authenticate(ws, "alice", "set by the admin").name == "alice"
    assert [a for _who, a, name in audit_actions(ws) if name == "alice"] == ["user.add", "user.passwd", "user.passwd"]


def test_a_hash_with_old_parameters_is_replaced_at_the_next_sign_in(ws: Workspace) -> None:
    with_admin(ws)
    # Parameters other than the ones idsync hashes with now (the tests' cheap ones).
    weak = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    with ws.db.session() as session:
        repo = UserRepository(session)
        repo.set_password_hash(repo.require("boss").id, weak)
    assert signin.authenticate(ws, "boss", PASSWORD).name == "boss"
    with ws.db.session() as session:
        repo = UserRepository(session)
        rehashed = repo.password_hash(repo.require("boss").id)
    assert rehashed != weak and not users._hasher.check_needs_rehash(rehashed or "")


def test_a_disabled_user_holds_no_role_and_cannot_sign_in(ws: Workspace) -> None:
    boss = with_admin(ws)
    users.add_user(boss, "olga", roles=[Role.OPERATOR], password="olgas password")
    users.set_disabled(boss, "olga", True)
    olga = ws.acting_as(Principal("olga", "user"))
    with pytest.raises(PermissionDeniedError, match=r"user 'olga' \(disabled\) may not read sync jobs: that needs any of the roles admin, operator, approver, auditor"):
        definitions.list_definitions(olga, "job")
    with pytest.raises(Exception, match="user 'olga' is disabled"):
        signin.authenticate(ws, "olga", "olgas password")
    users.set_disabled(boss, "olga", False)
    assert definitions.list_definitions(olga, "job") == []


def test_the_last_enabled_admin_can_be_neither_disabled_removed_nor_demoted(ws: Workspace) -> None:
    boss = with_admin(ws)
    for attempt in (
        lambda: users.set_disabled(boss, "boss", True),
        lambda: users.remove_user(boss, "boss"),
        lambda: users.revoke(boss, "boss", [Role.ADMIN]),
    ):
        with pytest.raises(StateConflictError, match="last enabled administrator"):
            attempt()
    users.add_user(boss, "second", roles=[Role.ADMIN])
    users.set_disabled(boss, "second", True)  # another admin, but a disabled one, does not count
    with pytest.raises(StateConflictError, match="last enabled administrator"):
        users.remove_user(boss, "boss")
    users.set_disabled(boss, "second", False)
    users.remove_user(boss, "boss")
    assert [d.user.name for d in users.list_users(ws.acting_as(Principal("second", "user")))] == ["second"]


def test_grant_and_revoke_are_audited_and_admin_is_not_approver(ws: Workspace) -> None:
    boss = with_admin(ws)
    from idsync.services import authz

    assert authz.rights(boss).roles == {Role.ADMIN, Role.OPERATOR, Role.AUDITOR}
    assert users.grant(boss, "boss", [Role.APPROVER, Role.ADMIN]) == [Role.APPROVER]
    assert Role.APPROVER in authz.rights(boss).roles
    assert users.revoke(boss, "boss", [Role.APPROVER, Role.AUDITOR]) == [Role.APPROVER]
    with ws.db.session() as session:
        entries = {e.action: e.detail for e in audit.list_entries(session, object_kind="user")}
    assert entries["user.grant"]["roles"] == ["approver"] and entries["user.revoke"]["roles"] == ["approver"]


def test_removing_a_user_takes_its_roles_and_tokens(ws: Workspace) -> None:
    from idsync.services import tokens

    boss = with_admin(ws)
    users.add_user(boss, "alice", roles=[Role.AUDITOR])
    made = tokens.create(boss, "ci", user="alice")
    users.remove_user(boss, "alice")
    with pytest.raises(NotFoundError, match="no user named 'alice'"):
        users.show_user(boss, "alice")
    with pytest.raises(Exception, match="not valid"):
        tokens.authenticate_token(ws, made.token)
    users.add_user(boss, "alice")  # the name is free again, with nothing of the old user's
    assert users.show_user(boss, "alice").roles == [] and users.show_user(boss, "alice").tokens == []


def test_role_groups_are_added_listed_and_removed(ws: Workspace) -> None:
    boss = with_admin(ws)
    definitions.save(boss, "store", definitions.parse("store", {
        "name": "corp", "kind": "ldap", "url": "ldap://127.0.0.1:9", "bind_dn": "cn=x", "bind_password": "pw",
    }))
    group = users.add_role_group(boss, "corp", "CN=Sync-Approvers, dc=example,dc=org", Role.APPROVER)
    assert group.group_dn == "cn=sync-approvers,dc=example,dc=org"
    users.add_role_group(boss, "corp", "cn=sync-approvers,dc=example,dc=org", Role.AUDITOR)
    with pytest.raises(StateConflictError, match="hold the role approver already"):
        users.add_role_group(boss, "corp", "cn=Sync-Approvers,dc=example,dc=org", Role.APPROVER)
    with pytest.raises(NotFoundError):
        users.add_role_group(boss, "nope", "cn=g", Role.APPROVER)
    assert [(g.store_name, g.role) for g in users.list_role_groups(boss)] == [
        ("corp", Role.APPROVER), ("corp", Role.AUDITOR),
    ]
    removed = users.remove_role_group(boss, "corp", "cn=sync-approvers,dc=example,dc=org")
    assert {g.role for g in removed} == {Role.APPROVER, Role.AUDITOR}
    assert users.list_role_groups(boss) == []
    with pytest.raises(NotFoundError):
        users.remove_role_group(boss, "corp", "cn=sync-approvers,dc=example,dc=org")
    assert [a for _w, a, _n in audit_actions(ws)].count("role_group.remove") == 2


def test_a_directory_user_needs_an_ldap_store_and_a_dn_and_no_password(ws: Workspace) -> None:
    boss = with_admin(ws)
    definitions.save(boss, "store", definitions.parse("store", {"name": "dir", "kind": "local", "path": "d.db"}))
    with pytest.raises(ConfigError, match="needs the identity store it signs in to and its DN"):
        users.add_user(boss, "dora", source="directory", store="dir")
    with pytest.raises(ConfigError, match="not an LDAP server"):
        users.add_user(boss, "dora", source="directory", store="dir", dn="uid=dora,dc=example,dc=org")
    with pytest.raises(ConfigError, match="keeps none"):
        users.add_user(boss, "dora", source="directory", store="dir", dn="uid=dora", password="some password")
