"""Signing in against a real slapd: a bind as the user's DN, roles granted by directory groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.errors import AuthError, TransientError
from idsync.services import authz, definitions, signin, users
from idsync.services.workspace import Workspace
from idsync.store import audit
from idsync.store.users_repo import UserRepository
from tests.e2e.test_cli import free_port
from tests.servers.slapd import SlapdServer

pytestmark = pytest.mark.slapd

PASSWORD = "dora's directory password"


@pytest.fixture
def ws(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    return Workspace(principal=Principal("root", "os-user"))


@pytest.fixture
def people(slapd: SlapdServer) -> str:
    """A container holding dora and eve (with passwords) and two groups listing dora."""
    container = slapd.new_container("signin")
    conn = slapd.connect()
    try:
        for uid, password in (("dora", PASSWORD), ("eve", "eve's password")):
            conn.add_s(f"uid={uid},{container}", [
                ("objectClass", [b"inetOrgPerson"]), ("uid", [uid.encode()]), ("cn", [uid.encode()]),
                ("sn", [uid.encode()]), ("userPassword", [password.encode()]),
            ])
        conn.add_s(f"cn=sync-approvers,{container}", [
            ("objectClass", [b"groupOfNames"]), ("cn", [b"sync-approvers"]),
            ("member", [f"UID=Dora,{container}".encode()]),  # the DN written another way
        ])
        conn.add_s(f"cn=sync-auditors,{container}", [
            ("objectClass", [b"groupOfUniqueNames"]), ("cn", [b"sync-auditors"]),
            ("uniqueMember", [f"uid=dora,{container}".encode(), f"uid=eve,{container}".encode()]),
        ])
    finally:
        conn.unbind_s()
    return container


def setup(ws: Workspace, slapd: SlapdServer, container: str, url: str | None = None) -> Workspace:
    """The LDAP store ``corp``, an admin mapped to this account, and the directory user dora."""
    users.add_user(ws, "boss", os_user="root", roles=[Role.ADMIN], password="the boss's password")
    boss = ws.acting_as(Principal("boss", "user"))
    definitions.save(boss, "store", definitions.parse("store", {
        "name": "corp", "kind": "ldap", "url": url or slapd.url, "bind_dn": slapd.root_dn,
        "bind_password": slapd.root_pw,
    }))
    users.add_user(boss, "dora", source="directory", store="corp", dn=f"uid=dora,{container}")
    return boss


def test_a_directory_user_signs_in_by_a_bind_as_its_dn(ws: Workspace, slapd: SlapdServer, people: str) -> None:
    setup(ws, slapd, people)
    assert signin.authenticate(ws, "dora", PASSWORD) == Principal("dora", "user")
    with pytest.raises(AuthError) as wrong:
        signin.authenticate(ws, "dora", "not her password")
    with pytest.raises(AuthError) as unknown:
        signin.authenticate(ws, "nobody", PASSWORD)
    with pytest.raises(AuthError) as empty:  # an unauthenticated bind would succeed: never sent
        signin.authenticate(ws, "dora", "")
    assert wrong.value.message == unknown.value.message == empty.value.message == signin.REFUSED


def test_roles_granted_by_groups_are_stored_at_sign_in_and_taken_when_membership_ends(
    ws: Workspace, slapd: SlapdServer, people: str
) -> None:
    boss = setup(ws, slapd, people)
    dora = ws.acting_as(Principal("dora", "user"))
    assert authz.rights(dora).roles == frozenset()
    users.add_role_group(boss, "corp", f"cn=sync-approvers,{people}", Role.APPROVER)
    users.add_role_group(boss, "corp", f"cn=sync-auditors,{people}", Role.AUDITOR)
    users.add_role_group(boss, "corp", f"cn=gone,{people}", Role.OPERATOR)  # no such group: grants nothing
    users.grant(boss, "dora", [Role.AUDITOR])  # also granted directly: kept whatever the groups say

    signin.authenticate(ws, "dora", PASSWORD)
    assert authz.rights(dora).roles == {Role.APPROVER, Role.AUDITOR}  # no directory round trip here
    grants = {g.role: g.granted_by for g in users.show_user(boss, "dora").grants}
    assert grants == {Role.APPROVER: f"group cn=sync-approvers,{people}", Role.AUDITOR: "boss"}

    conn = slapd.connect()
    try:
        conn.delete_s(f"cn=sync-approvers,{people}")
    finally:
        conn.unbind_s()
    signin.authenticate(ws, "dora", PASSWORD)
    assert authz.rights(dora).roles == {Role.AUDITOR}
    with ws.db.session() as session:
        trail = [e.detail for e in audit.list_entries(session, object_kind="user") if e.action == "user.group_roles"]
    assert trail == [{"added": [], "removed": ["approver"]}, {"added": ["approver"], "removed": []}]


def test_a_group_role_goes_when_the_group_is_no_longer_mapped(ws: Workspace, slapd: SlapdServer, people: str) -> None:
    boss = setup(ws, slapd, people)
    users.add_role_group(boss, "corp", f"cn=sync-auditors,{people}", Role.AUDITOR)
    signin.authenticate(ws, "dora", PASSWORD)
    assert authz.rights(ws.acting_as(Principal("dora", "user"))).roles == {Role.AUDITOR}
    users.remove_role_group(boss, "corp", f"cn=sync-auditors,{people}")
    signin.authenticate(ws, "dora", PASSWORD)
    assert authz.rights(ws.acting_as(Principal("dora", "user"))).roles == frozenset()
    with ws.db.session() as session:
        repo = UserRepository(session)
        assert repo.grants(repo.require("dora").id) == []


def test_a_disabled_directory_user_is_refused_even_with_the_right_password(
    ws: Workspace, slapd: SlapdServer, people: str
) -> None:
    boss = setup(ws, slapd, people)
    users.set_disabled(boss, "dora", True)
    with pytest.raises(AuthError, match="user 'dora' is disabled"):
        signin.authenticate(ws, "dora", PASSWORD)


def test_a_directory_that_cannot_be_reached_is_not_a_wrong_password(
    ws: Workspace, slapd: SlapdServer, people: str
) -> None:
    setup(ws, slapd, people, url=f"ldap://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError, match="cannot reach the LDAP server"):
        signin.authenticate(ws, "dora", PASSWORD)


def test_a_local_user_signs_in_with_its_password(ws: Workspace, slapd: SlapdServer, people: str) -> None:
    setup(ws, slapd, people)
    assert signin.authenticate(ws, "boss", "the boss's password") == Principal("boss", "user")
    with pytest.raises(AuthError, match="wrong user name or password"):
        signin.authenticate(ws, "boss", PASSWORD)
