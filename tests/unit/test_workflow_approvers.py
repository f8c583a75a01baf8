"""Who may decide a request, and what a partial approval lets through [S7.1, S7.2]."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.errors import ConfigError
from idsync.workflow.approvers import (
    ChangeFilter,
    Person,
    Routing,
    eligible,
    intersect,
    normalized_exclusions,
    split_exclusion,
)
from idsync.workflow.requests import Decision

PEOPLE = [
    Person("alice", approver=True),
    Person("bob", dn="uid=bob,ou=people,dc=example,dc=org", approver=True),
    Person("carol", dn="uid=carol,ou=people,dc=example,dc=org", approver=False),
    Person("dave", approver=True, disabled=True),
    Person("erin", approver=True),
    Person("rita", approver=True),
    Person("esc", approver=True),
]
BOB = "uid=bob,ou=people,dc=example,dc=org"
CAROL = "uid=carol,ou=people,dc=example,dc=org"


def test_named_approvers_and_group_members_mapped_by_their_dn() -> None:
    routing = Routing(named=frozenset({"alice"}), group_members=frozenset({BOB, CAROL}))
    assert eligible(routing, PEOPLE, requester="rita") == {"alice", "bob"}


def test_a_disabled_user_or_one_without_the_approver_role_is_not_eligible() -> None:
    routing = Routing(named=frozenset({"dave", "carol"}))
    assert eligible(routing, PEOPLE, requester="rita") == frozenset()


def test_the_requester_is_never_eligible() -> None:
    routing = Routing(named=frozenset({"alice", "rita"}))
    assert eligible(routing, PEOPLE, requester="rita") == {"alice"}


def test_a_user_the_request_was_rerouted_to_is_eligible() -> None:
    routing = Routing(named=frozenset({"alice"}))
    assert eligible(routing, PEOPLE, requester="rita", rerouted_to=frozenset({"erin"})) == {"alice", "erin"}


def test_escalation_approvers_only_once_escalated() -> None:
    routing = Routing(named=frozenset({"alice"}), escalation_named=frozenset({"esc"}))
    assert eligible(routing, PEOPLE, requester="rita") == {"alice"}
    assert eligible(routing, PEOPLE, requester="rita", escalation_step=1) == {"alice", "esc"}


def test_routings_of_several_stores_are_united() -> None:
    union = Routing(named=frozenset({"alice"})).union(Routing(group_members=frozenset({BOB})))
    assert eligible(union, PEOPLE, requester="rita") == {"alice", "bob"}


def approval(kinds: set[ChangeOp] | None = None, excluded: set[str] = set()) -> Decision:  # noqa: B006
    return Decision(
        "x", "approve", datetime(2026, 1, 1, tzinfo=UTC),
        kinds=frozenset(kinds) if kinds is not None else None, excluded=frozenset(excluded),
    )


CREATE = Change(ChangeOp.CREATE, "uid=new,ou=people,dc=example,dc=org")
DELETE = Change(ChangeOp.DELETE, "uid=old,ou=people,dc=example,dc=org")
UPDATE = Change(ChangeOp.UPDATE, "UID=Kept, OU=People,dc=example,dc=org")
MOVE = Change(ChangeOp.MOVE, "uid=m,ou=a,dc=example,dc=org", new_dn="uid=m,ou=b,dc=example,dc=org")


def test_a_full_approval_allows_everything() -> None:
    allowed = intersect([approval()])
    assert allowed.everything
    assert all(allowed.allows(c) for c in (CREATE, DELETE, UPDATE, MOVE))


def test_approval_by_kind_leaves_the_other_kinds_out() -> None:
    allowed = intersect([approval({ChangeOp.CREATE, ChangeOp.UPDATE})])
    assert allowed.allows(CREATE) and allowed.allows(UPDATE)
    assert not allowed.allows(DELETE) and not allowed.allows(MOVE)


def test_excluded_objects_compare_as_normalised_dns_and_a_move_by_either_dn() -> None:
    allowed = ChangeFilter(excluded=normalized_exclusions(["uid=kept,ou=people,DC=example,DC=org", "uid=m,ou=b,dc=example,dc=org"]))
    assert not allowed.allows(UPDATE)
    assert not allowed.allows(MOVE)
    assert allowed.allows(CREATE)


def test_several_approvals_apply_the_intersection() -> None:
    allowed = intersect([
        approval({ChangeOp.CREATE, ChangeOp.UPDATE, ChangeOp.DELETE}),
        approval({ChangeOp.CREATE, ChangeOp.UPDATE}, {"uid=new,ou=people,dc=example,dc=org"}),
        approval(),
    ])
    assert allowed.kinds == {ChangeOp.CREATE, ChangeOp.UPDATE}
    assert not allowed.allows(CREATE)  # excluded by the second
    assert allowed.allows(UPDATE)
    assert not allowed.allows(DELETE)  # not approved by the second
    assert allowed.describe() == "only create, update; 1 object(s) excluded"


GROUP = "cn=Staff,ou=Groups,dc=x"
MEMBER_ANN, MEMBER_BOB = "uid=ann,ou=People,dc=x", "uid=bob,ou=People,dc=x"


def _membership(*mods: Modification) -> Change:
    return Change(ChangeOp.UPDATE, GROUP, key="staff", mods=mods)


def test_a_member_left_out_is_dropped_from_its_group_s_change_only() -> None:
    change = _membership(
        Modification(ModOp.ADD, "member", (MEMBER_ANN, MEMBER_BOB)), Modification(ModOp.DELETE, "member", ("uid=cid,ou=People,dc=x",)),
    )
    left_out = ChangeFilter(excluded=normalized_exclusions(["CN=staff, ou=groups,dc=x;UID=Ann,ou=people,dc=x"]))
    narrowed = left_out.narrow(change)
    assert narrowed is not None
    assert [(m.op, m.values) for m in narrowed.mods] == [
        (ModOp.ADD, (MEMBER_BOB,)), (ModOp.DELETE, ("uid=cid,ou=People,dc=x",)),
    ]
    assert left_out.allows(change)  # the group's change is not left out whole
    other = Change(ChangeOp.UPDATE, "cn=other,dc=x", mods=(Modification(ModOp.ADD, "member", (MEMBER_ANN,)),))
    assert left_out.narrow(other) is other
    assert left_out.describe() == "1 member(s) excluded"


def test_a_change_whose_every_member_is_left_out_is_not_applied() -> None:
    change = _membership(Modification(ModOp.ADD, "member", (MEMBER_ANN,)), Modification(ModOp.DELETE, "member", (MEMBER_BOB,)))
    left_out = ChangeFilter(excluded=normalized_exclusions([f"{GROUP};{MEMBER_ANN}", f"{GROUP};{MEMBER_BOB}", "uid=zed,dc=x"]))
    assert left_out.narrow(change) is None
    assert left_out.describe() == "1 object(s) excluded; 2 member(s) excluded"
    assert ChangeFilter(excluded=normalized_exclusions([GROUP])).narrow(change) is None  # the whole group


def test_an_escaped_semicolon_stays_in_the_dn() -> None:
    assert split_exclusion(r"cn=a\;b,dc=x") == (r"cn=a\;b,dc=x", None)
    assert split_exclusion(r"cn=a\;b,dc=x;uid=c,dc=x") == (r"cn=a\;b,dc=x", "uid=c,dc=x")
    with pytest.raises(ConfigError, match="GROUP_DN;MEMBER_DN"):
        normalized_exclusions([f"{GROUP};"])
    with pytest.raises(ConfigError):
        normalized_exclusions([f"{GROUP};not a dn"])
