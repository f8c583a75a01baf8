"""The directory as plans would leave it: creates, deletes, updates and renames overlaid on what was read."""

from __future__ import annotations

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.dn import is_within, normalize_dn
from idsync.domain.entry import Attrs, Scope
from idsync.smartgroups.overlay import Overlay

PEOPLE = "ou=people,dc=x"
NOW = {
    normalize_dn(f"uid=ann,{PEOPLE}"): Attrs({"objectClass": ["person"], "uid": ["ann"], "dept": ["Sales"]}),
    normalize_dn(f"uid=bob,{PEOPLE}"): Attrs({"objectClass": ["person"], "uid": ["bob"], "dept": ["IT"]}),
    normalize_dn(f"uid=cid,{PEOPLE}"): Attrs({"objectClass": ["person"], "uid": ["cid"], "dept": ["IT"]}),
}
READS: list[str] = []


def read(dn: str) -> Attrs | None:
    READS.append(dn)
    return NOW.get(normalize_dn(dn))


def it(overlay: Overlay) -> set[str]:
    # What the directory answers now for (dept=IT): bob and cid.
    found = {normalize_dn(f"uid={u},{PEOPLE}"): f"uid={u},{PEOPLE}" for u in ("bob", "cid")}
    return {dn.split(",")[0] for dn in overlay.over(found, PEOPLE, Scope.SUB, "(dept=IT)").values()}


def test_untouched_entries_keep_the_directory_answer() -> None:
    assert it(Overlay()) == {"uid=bob", "uid=cid"}


def test_a_created_entry_that_matches_is_found_and_one_that_does_not_is_not() -> None:
    overlay = Overlay()
    overlay.apply_all([
        Change(ChangeOp.CREATE, f"uid=dee,{PEOPLE}", attrs=Attrs({"uid": ["dee"], "dept": ["it"]})),
        Change(ChangeOp.CREATE, f"uid=eve,{PEOPLE}", attrs=Attrs({"uid": ["eve"], "dept": ["HR"]})),
        Change(ChangeOp.CREATE, "uid=far,ou=elsewhere,dc=x", attrs=Attrs({"uid": ["far"], "dept": ["IT"]})),
    ], read)
    assert it(overlay) == {"uid=bob", "uid=cid", "uid=dee"}


def test_deletes_updates_and_renames_are_followed() -> None:
    READS.clear()
    overlay = Overlay()
    overlay.apply_all([
        Change(ChangeOp.DELETE, f"uid=bob,{PEOPLE}"),
        Change(ChangeOp.UPDATE, f"uid=ann,{PEOPLE}", mods=(Modification(ModOp.REPLACE, "DEPT", ("IT",)),)),
        Change(ChangeOp.MOVE, f"uid=cid,{PEOPLE}", new_dn=f"uid=cy,{PEOPLE}"),
        Change(ChangeOp.UPDATE, f"uid=cy,{PEOPLE}", mods=(Modification(ModOp.ADD, "mail", ("c@x",)),)),
    ], read)
    assert it(overlay) == {"uid=ann", "uid=cy"}
    moved = overlay.attrs(f"uid=cy,{PEOPLE}")
    assert moved is not None and list(moved.get_values("uid")) == ["cy"] and list(moved.get_values("mail")) == ["c@x"]
    assert overlay.attrs(f"uid=cid,{PEOPLE}") is None
    assert len(READS) == 2  # ann and cid read once each; the created and changed-again entries are not


def test_a_value_delete_and_an_attribute_delete() -> None:
    overlay = Overlay()
    overlay.apply_all([
        Change(ChangeOp.UPDATE, f"uid=bob,{PEOPLE}", mods=(Modification(ModOp.DELETE, "dept", ("it",)),)),
        Change(ChangeOp.UPDATE, f"uid=cid,{PEOPLE}", mods=(Modification(ModOp.DELETE, "dept", ()),)),
    ], read)
    assert it(overlay) == set()


def test_a_change_of_an_entry_that_does_not_exist_changes_nothing() -> None:
    overlay = Overlay()
    overlay.apply(Change(ChangeOp.UPDATE, f"uid=zed,{PEOPLE}", mods=(Modification(ModOp.REPLACE, "dept", ("IT",)),)), read)
    assert len(overlay) == 0 and it(overlay) == {"uid=bob", "uid=cid"}


def test_join_holders_are_the_touched_entries_with_the_attribute() -> None:
    overlay = Overlay()
    overlay.apply(Change(ChangeOp.CREATE, f"uid=dee,{PEOPLE}", attrs=Attrs({"uid": ["Dee"]})), read)
    assert overlay.holding(PEOPLE, "UID") == [(f"uid=dee,{PEOPLE}", ("dee",))]
    assert overlay.holding("ou=other,dc=x", "uid") == []


# A subtree: ou=people (bob, cid in IT; ann in Sales) renamed or moved with its children.
TREE = {
    normalize_dn(PEOPLE): ("ou=people,dc=x", Attrs({"objectClass": ["organizationalUnit"], "ou": ["people"]})),
    **{key: (f"uid={attrs.get_values('uid')[0]},{PEOPLE}", attrs) for key, attrs in NOW.items()},
    normalize_dn("ou=new,dc=x"): ("ou=new,dc=x", Attrs({"objectClass": ["organizationalUnit"], "ou": ["new"]})),
}


def read_tree(dn: str) -> Attrs | None:
    found = TREE.get(normalize_dn(dn))
    return found[1] if found else None


def search(base: str, scope: Scope) -> dict[str, str]:
    """What the directory (which the plans have not changed) answers for (dept=IT)."""
    return {
        key: dn for key, (dn, attrs) in TREE.items()
        if is_within(dn, base, scope) and "IT" in attrs.get_values("dept")
    }


def ask(overlay: Overlay, base: str, scope: Scope = Scope.SUB) -> set[str]:
    """(dept=IT) under *base* once the plans are applied, as a preview searches it."""
    found = search(base, scope) if normalize_dn(base) in TREE else {}
    for where, how in overlay.origins(base, scope):
        found.update(search(where, how))
    return set(overlay.over(found, base, scope, "(dept=IT)").values())


def test_a_renamed_container_s_children_answer_under_their_new_dns() -> None:
    overlay = Overlay()
    overlay.apply(Change(ChangeOp.MOVE, PEOPLE, new_dn="ou=staff,dc=x"), read_tree)
    assert ask(overlay, "dc=x") == {"uid=bob,ou=staff,dc=x", "uid=cid,ou=staff,dc=x"}
    assert ask(overlay, "ou=staff,dc=x") == {"uid=bob,ou=staff,dc=x", "uid=cid,ou=staff,dc=x"}
    assert ask(overlay, "ou=staff,dc=x", Scope.ONE) == {"uid=bob,ou=staff,dc=x", "uid=cid,ou=staff,dc=x"}
    assert ask(overlay, PEOPLE) == set()  # moved away
    assert overlay.origin(f"uid=bob,{PEOPLE}") is None
    assert overlay.origin("uid=bob,ou=staff,dc=x") == f"uid=bob,{PEOPLE}"


def test_a_subtree_moved_under_another_base_enters_its_queries_and_leaves_the_old_one() -> None:
    overlay = Overlay()
    overlay.apply(Change(ChangeOp.MOVE, PEOPLE, new_dn="ou=people,ou=new,dc=x"), read_tree)
    assert ask(overlay, "ou=new,dc=x") == {"uid=bob,ou=people,ou=new,dc=x", "uid=cid,ou=people,ou=new,dc=x"}
    assert ask(overlay, "ou=new,dc=x", Scope.ONE) == set()  # the children are two levels down
    assert ask(overlay, "dc=x", Scope.ONE) == set()


def test_children_touched_before_or_after_the_move_follow_it() -> None:
    overlay = Overlay()
    overlay.apply_all([
        Change(ChangeOp.UPDATE, f"uid=ann,{PEOPLE}", mods=(Modification(ModOp.REPLACE, "dept", ("IT",)),)),
        Change(ChangeOp.MOVE, PEOPLE, new_dn="ou=staff,dc=x"),
        Change(ChangeOp.UPDATE, "uid=bob,ou=staff,dc=x", mods=(Modification(ModOp.REPLACE, "dept", ("HR",)),)),
        Change(ChangeOp.UPDATE, f"uid=cid,{PEOPLE}", mods=(Modification(ModOp.REPLACE, "dept", ("HR",)),)),  # gone
    ], read_tree)
    assert ask(overlay, "dc=x") == {"uid=ann,ou=staff,dc=x", "uid=cid,ou=staff,dc=x"}
    assert overlay.attrs(f"uid=ann,{PEOPLE}") is None
    bob = overlay.attrs("uid=bob,ou=staff,dc=x")
    assert bob is not None and list(bob.get_values("dept")) == ["HR"]  # read under its old DN


def test_join_holders_of_a_moved_subtree_answer_under_their_new_dns() -> None:
    overlay = Overlay()
    overlay.apply(Change(ChangeOp.MOVE, PEOPLE, new_dn="ou=staff,dc=x"), read_tree)
    found = [(dn, ("x",)) for dn, attrs in TREE.values() if attrs.get_values("uid")]
    assert [where for where, _how in overlay.origins("ou=staff,dc=x", Scope.SUB)] == [PEOPLE]
    assert {dn for dn, _v in overlay.untouched(found, "ou=staff,dc=x")} == {
        f"uid={u},ou=staff,dc=x" for u in ("ann", "bob", "cid")
    }
