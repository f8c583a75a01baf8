"""A workflow nobody could satisfy is refused when its store is saved (fail closed)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

from idsync.domain.changes import Change, ChangeOp
from idsync.domain.entry import Attrs
from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.errors import ConfigError
from idsync.services import connections, definitions
from idsync.services.workspace import Workspace
from idsync.store.tables import user_roles, users, utcnow
from tests.scheduler_world import SUFFIX, World

GROUP = f"cn=sync-approvers,{SUFFIX}"


def person(world: World, name: str, roles: tuple[Role, ...] = (Role.APPROVER,), *, disabled: bool = False,
           dn: str | None = None, os_user: str | None = None) -> None:
    now = utcnow()
    with world.ws.db.session() as session:
        user_id = session.execute(
            insert(users).values(
                name=name, display_name=name, disabled=disabled, dn=dn, os_user=os_user, created_at=now, updated_at=now
            )
        ).inserted_primary_key[0]
        for role in roles:
            session.execute(insert(user_roles).values(user_id=user_id, role=role.value, granted_by="test", granted_at=now))


def operator(world: World) -> Workspace:
    """The world's workspace acting as idsync itself: once users exist, the
    world's own principal (no user) may no longer save definitions."""
    return world.ws.acting_as(Principal.system("tests"))


def store_with(world: World, **workflow: Any) -> Any:
    data = {"name": "dir", "kind": "local", "path": str(world.root / "dir.db"), "suffix": SUFFIX, "workflow": workflow}
    return definitions.parse("store", data)


def test_a_workflow_with_nobody_to_approve_is_refused(world: World) -> None:
    with pytest.raises(ConfigError) as caught:
        definitions.save(operator(world), "store", store_with(world, manual=True, approvers=["alice"]))
    assert "needs 1 approval(s) but only 0 person(s) could give one ('alice' is not an idsync user)" in caught.value.message
    assert caught.value.field == "workflow.approvers"


def test_approvers_must_be_enabled_and_hold_the_approver_role(world: World) -> None:
    person(world, "alice", (Role.ADMIN, Role.OPERATOR))
    person(world, "bob", disabled=True)
    with pytest.raises(ConfigError) as caught:
        definitions.save(operator(world), "store", store_with(world, scheduled=True, approvers=["alice", "bob"]))
    assert "'alice' does not hold the approver role; 'bob' is disabled" in caught.value.message


def test_enough_approvers_for_the_number_required(world: World) -> None:
    person(world, "carol")
    with pytest.raises(ConfigError, match="needs 2 approval"):
        definitions.save(operator(world), "store", store_with(world, held=True, approvers=["carol"], required_approvals=2))
    person(world, "dave")
    saved = definitions.save(operator(world), "store", store_with(world, held=True, approvers=["carol", "dave"], required_approvals=2))
    assert saved == "updated"


def test_a_workflow_that_requires_nothing_needs_no_approver(world: World) -> None:
    assert definitions.save(operator(world), "store", store_with(world)) == "updated"


def test_members_of_an_approver_group_count_when_they_are_approvers(world: World) -> None:
    member = f"uid=erin,ou=People,{SUFFIX}"
    with connections.directory(world.ws, "dir") as directory:
        group = Attrs({"objectClass": ("groupOfNames",), "cn": ("sync-approvers",), "member": (member.upper(),)})
        outcomes = list(directory.apply([Change(ChangeOp.CREATE, GROUP, attrs=group)]))
    assert not any(outcome.error for outcome in outcomes)
    with pytest.raises(ConfigError, match="only 0 person"):
        definitions.save(operator(world), "store", store_with(world, manual=True, approver_group=GROUP))
    person(world, "erin", dn=member)
    assert definitions.save(operator(world), "store", store_with(world, manual=True, approver_group=GROUP)) == "updated"


def test_an_approver_group_that_cannot_be_read_is_refused(world: World) -> None:
    with pytest.raises(ConfigError) as caught:
        definitions.save(operator(world), "store", store_with(world, manual=True, approver_group=f"cn=nobody,{SUFFIX}"))
    assert "approver_group 'cn=nobody,dc=example,dc=org' could not be read" in caught.value.message
