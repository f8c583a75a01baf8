"""Writes: add, modify (add, delete, replace), delete and move, and how each fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs
from tests.contract.conftest import Box, ou, person, update


def _values(box: Box, dn: str, attr: str) -> set[str]:
    entry = box.get(dn)
    assert entry is not None, f"{dn} should exist"
    return set(entry.attrs.get_values(attr))


def test_create_stores_every_value(box: Box) -> None:
    dn = box.dn("uid=ada")
    box.apply_ok(person(dn, "ada", mail=["ada@example.org", "lovelace@example.org"], givenName="Ada"))

    entry = box.get(dn)
    assert entry is not None
    assert set(entry.attrs["mail"]) == {"ada@example.org", "lovelace@example.org"}
    assert entry.attrs["givenName"] == ("Ada",)
    assert entry.attrs["sn"] == ("Ada",)
    assert "inetorgperson" in {c.lower() for c in entry.attrs["objectClass"]}


def test_modify_add_delete_and_replace_values(box: Box) -> None:
    dn = box.dn("uid=bob")
    box.apply_ok(person(dn, "bob", mail=["b1@example.org", "b2@example.org"], telephoneNumber="1"))

    box.apply_ok(update(dn, (ModOp.ADD, "mail", ["b3@example.org"])))
    assert _values(box, dn, "mail") == {"b1@example.org", "b2@example.org", "b3@example.org"}

    box.apply_ok(update(dn, (ModOp.DELETE, "mail", ["b1@example.org"])))
    assert _values(box, dn, "mail") == {"b2@example.org", "b3@example.org"}

    box.apply_ok(update(dn, (ModOp.REPLACE, "telephoneNumber", ["2", "3"])))
    assert _values(box, dn, "telephoneNumber") == {"2", "3"}

    # Several modifications in one change are applied together.
    box.apply_ok(update(dn, (ModOp.REPLACE, "givenName", ["Bob"]), (ModOp.ADD, "title", ["Eng"])))
    assert _values(box, dn, "givenName") == {"Bob"}
    assert _values(box, dn, "title") == {"Eng"}


def test_empty_delete_and_empty_replace_remove_the_attribute(box: Box) -> None:
    dn = box.dn("uid=cy")
    box.apply_ok(person(dn, "cy", mail=["c1@example.org", "c2@example.org"], title="Boss"))

    box.apply_ok(update(dn, (ModOp.DELETE, "mail", [])))
    box.apply_ok(update(dn, (ModOp.REPLACE, "title", [])))

    entry = box.get(dn)
    assert entry is not None
    assert "mail" not in entry.attrs
    assert "title" not in entry.attrs
    # Replacing an absent attribute with nothing is not an error.
    box.apply_ok(update(dn, (ModOp.REPLACE, "title", [])))


def test_attribute_names_are_case_insensitive_in_writes(box: Box) -> None:
    dn = box.dn("uid=dee")
    box.apply_ok(person(dn, "dee", MAIL="d@example.org"))
    box.apply_ok(update(dn, (ModOp.ADD, "Mail", ["e@example.org"])))
    assert _values(box, dn, "mail") == {"d@example.org", "e@example.org"}


def test_delete_removes_the_entry(box: Box) -> None:
    dn = box.dn("uid=eve")
    box.apply_ok(person(dn, "eve"))
    box.apply_ok(Change(ChangeOp.DELETE, dn, key="eve"))
    assert box.get(dn) is None


def test_move_renames_within_the_same_parent(box: Box) -> None:
    old, new = box.dn("uid=fay"), box.dn("uid=faye")
    box.apply_ok(person(old, "fay", mail="fay@example.org"))

    box.apply_ok(Change(ChangeOp.MOVE, old, key="fay", new_dn=new))

    assert box.get(old) is None
    moved = box.get(new)
    assert moved is not None
    assert moved.attrs["uid"] == ("faye",), "the old RDN value is removed"
    assert moved.attrs["mail"] == ("fay@example.org",)


def test_move_to_another_parent_keeps_the_anchor(box: Box) -> None:
    box.apply_ok(ou(box.dn("ou=gone"), "gone"))
    old, new = box.dn("uid=gus"), box.dn("uid=gus,ou=gone")
    box.apply_ok(person(old, "gus"))
    before = box.get(old, ["entryUUID"])
    assert before is not None

    box.apply_ok(Change(ChangeOp.MOVE, old, key="gus", new_dn=new))

    after = box.get(new, ["entryUUID"])
    assert box.get(old) is None
    assert after is not None
    assert after.attrs["entryUUID"] == before.attrs["entryUUID"]


def test_move_with_modifications_applies_them_on_the_new_dn(box: Box) -> None:
    box.apply_ok(ou(box.dn("ou=alumni"), "alumni"))
    old, new = box.dn("uid=hal"), box.dn("uid=hal2,ou=alumni")
    box.apply_ok(person(old, "hal", title="Eng"))

    move = Change(
        ChangeOp.MOVE, old, key="hal", new_dn=new,
        mods=(
            Modification(ModOp.REPLACE, "title", ("Former",)),
            Modification(ModOp.ADD, "description", ("moved",)),
        ),
    )
    box.apply_ok(move)

    assert box.get(old) is None
    assert _values(box, new, "title") == {"Former"}
    assert _values(box, new, "description") == {"moved"}
    assert _values(box, new, "uid") == {"hal2"}


def test_update_without_modifications_succeeds_and_writes_nothing(box: Box) -> None:
    dn = box.dn("uid=ivy")
    box.apply_ok(person(dn, "ivy"))
    before = box.get(dn, ["modifyTimestamp", "entryUUID"])

    box.apply_ok(Change(ChangeOp.UPDATE, dn, key="ivy"))
    assert list(box.directory.apply([])) == []
    list(box.find("(uid=ivy)"))

    after = box.get(dn, ["modifyTimestamp", "entryUUID"])
    assert before is not None and after is not None
    assert after.attrs["modifyTimestamp"] == before.attrs["modifyTimestamp"]


# ------------------------------------------------------------------ record-level errors


def test_add_of_an_existing_dn_fails(box: Box) -> None:
    dn = box.dn("uid=jo")
    box.apply_ok(person(dn, "jo"))
    message = box.fails(person(dn, "jo", key="jo-again"))
    assert "uid=jo" in message.lower()


def test_add_under_a_missing_parent_fails(box: Box) -> None:
    message = box.fails(person(box.dn("uid=kim,ou=nowhere"), "kim"))
    assert "uid=kim" in message.lower()
    assert box.get(box.dn("uid=kim,ou=nowhere")) is None


def test_add_with_an_undefined_attribute_type_fails(box: Box) -> None:
    box.fails(person(box.dn("uid=lee"), "lee", noSuchAttributeXyz="1"))
    assert box.get(box.dn("uid=lee")) is None


def test_add_without_a_required_attribute_fails(box: Box) -> None:
    change = Change(
        ChangeOp.CREATE, box.dn("uid=max"), key="max",
        attrs=Attrs({"objectClass": ["inetOrgPerson"], "uid": ["max"], "cn": ["Max"]}),  # no sn
    )
    box.fails(change)
    assert box.get(box.dn("uid=max")) is None


def test_modify_of_a_missing_entry_fails(box: Box) -> None:
    box.fails(update(box.dn("uid=ned"), (ModOp.REPLACE, "title", ["x"]), key="ned"))


def test_modify_with_an_undefined_attribute_type_fails(box: Box) -> None:
    dn = box.dn("uid=oli")
    box.apply_ok(person(dn, "oli"))
    box.fails(update(dn, (ModOp.ADD, "noSuchAttributeXyz", ["1"]), key="oli"))


def test_adding_a_value_already_present_fails(box: Box) -> None:
    dn = box.dn("uid=pam")
    box.apply_ok(person(dn, "pam", mail="pam@example.org"))
    box.fails(update(dn, (ModOp.ADD, "mail", ["pam@example.org"]), key="pam"))
    assert _values(box, dn, "mail") == {"pam@example.org"}


def test_deleting_an_absent_value_fails_and_changes_nothing(box: Box) -> None:
    dn = box.dn("uid=quinn")
    box.apply_ok(person(dn, "quinn", mail="q@example.org"))
    box.fails(update(dn, (ModOp.DELETE, "mail", ["other@example.org"]), key="quinn"))
    box.fails(update(dn, (ModOp.DELETE, "title", []), key="quinn"))
    assert _values(box, dn, "mail") == {"q@example.org"}


def test_a_failing_modification_leaves_the_others_of_its_change_unapplied(box: Box) -> None:
    dn = box.dn("uid=rae")
    box.apply_ok(person(dn, "rae", title="Eng"))
    box.fails(update(dn, (ModOp.REPLACE, "title", ["Boss"]), (ModOp.DELETE, "mail", ["x@y"]), key="rae"))
    assert _values(box, dn, "title") == {"Eng"}


def test_deleting_a_missing_entry_fails(box: Box) -> None:
    box.fails(Change(ChangeOp.DELETE, box.dn("uid=sam"), key="sam"))


def test_deleting_an_entry_with_children_fails(box: Box) -> None:
    parent = box.dn("ou=team")
    box.apply_ok(ou(parent, "team"))
    box.apply_ok(person(f"uid=tom,{parent}", "tom"))
    box.fails(Change(ChangeOp.DELETE, parent, key="team"))
    assert box.get(parent) is not None


def test_move_failures(box: Box) -> None:
    a, b = box.dn("uid=ula"), box.dn("uid=val")
    box.apply_ok(person(a, "ula"), person(b, "val"))
    box.fails(Change(ChangeOp.MOVE, a, key="ula", new_dn=b))  # target exists
    box.fails(Change(ChangeOp.MOVE, a, key="ula", new_dn=box.dn("uid=ula,ou=nowhere")))
    box.fails(Change(ChangeOp.MOVE, box.dn("uid=nobody"), key="nobody", new_dn=box.dn("uid=x")))
    assert box.get(a) is not None and box.get(b) is not None


def test_move_whose_modifications_fail_is_an_error(box: Box) -> None:
    old, new = box.dn("uid=wes"), box.dn("uid=wes2")
    box.apply_ok(person(old, "wes"))
    move = Change(
        ChangeOp.MOVE, old, key="wes", new_dn=new,
        mods=(Modification(ModOp.ADD, "noSuchAttributeXyz", ("1",)),),
    )
    message = box.fails(move)
    assert "uid=wes" in message.lower()


# ------------------------------------------------------------------ many changes at once


def test_many_changes_give_one_outcome_each_and_pinpoint_the_failures(box: Box) -> None:
    existing = set(range(0, 300, 17))
    box.apply_ok(*(person(box.dn(f"uid=m{i}"), f"m{i}") for i in sorted(existing)))

    changes = []
    expected_failures = set()
    for i in range(300):
        dn = box.dn(f"uid=m{i}")
        if i % 23 == 5:  # missing sn: object class violation
            changes.append(Change(ChangeOp.CREATE, dn, key=f"m{i}",
                                  attrs=Attrs({"objectClass": ["inetOrgPerson"], "uid": [f"m{i}"], "cn": ["x"]})))
            expected_failures.add(f"m{i}")
        else:
            changes.append(person(dn, f"m{i}", mail=f"m{i}@example.org"))
            if i in existing:
                expected_failures.add(f"m{i}")
    # updates after the creates: one of them on an entry that never came to be
    changes += [update(box.dn(f"uid=m{i}"), (ModOp.REPLACE, "title", [f"t{i}"]), key=f"u{i}") for i in (1, 2, 5)]
    expected_failures.add("u5")

    outcomes = list(box.directory.apply(changes))

    assert len(outcomes) == len(changes)
    assert sorted(o.change.key for o in outcomes) == sorted(c.key for c in changes)
    failed = {o.change.key for o in outcomes if o.error is not None}
    assert failed == expected_failures
    for o in outcomes:
        if o.error is not None:
            assert o.error.key == o.change.key
            assert o.change.dn.split(",")[0].lower() in o.error.message.lower()
    never_created = {i for i in range(300) if i % 23 == 5 and i not in existing}
    assert len(box.find("(objectClass=inetOrgPerson)")) == 300 - len(never_created)
    assert _values(box, box.dn("uid=m2"), "title") == {"t2"}


def test_plan_order_is_kept_for_parents_and_children(box: Box) -> None:
    """Children created right after their container, deleted right before it, in one call."""
    parent = box.dn("ou=squad")
    kids = [person(f"uid=k{i},{parent}", f"k{i}") for i in range(40)]
    box.apply_ok(ou(parent, "squad"), *kids)
    assert len(box.find("(objectClass=inetOrgPerson)", base=parent)) == 40

    deletes = [Change(ChangeOp.DELETE, c.dn, key=c.key) for c in kids]
    box.apply_ok(*deletes, Change(ChangeOp.DELETE, parent, key="squad"))
    assert box.get(parent) is None


def test_plan_order_is_kept_for_one_entry(box: Box) -> None:
    dn = box.dn("uid=yan")
    box.apply_ok(
        person(dn, "yan"),
        update(dn, (ModOp.ADD, "mail", ["y1@example.org"]), key="yan"),
        update(dn, (ModOp.REPLACE, "mail", ["y2@example.org"]), key="yan"),
        Change(ChangeOp.MOVE, dn, key="yan", new_dn=box.dn("uid=yann")),
        update(box.dn("uid=yann"), (ModOp.ADD, "title", ["Moved"]), key="yan"),
    )
    assert _values(box, box.dn("uid=yann"), "mail") == {"y2@example.org"}
    assert _values(box, box.dn("uid=yann"), "title") == {"Moved"}


@pytest.mark.parametrize("op", [ChangeOp.UPDATE, ChangeOp.DISABLE])
def test_update_and_disable_both_modify(box: Box, op: ChangeOp) -> None:
    dn = box.dn("uid=zed")
    box.apply_ok(person(dn, "zed"))
    box.apply_ok(Change(op, dn, key="zed", mods=(Modification(ModOp.REPLACE, "description", ("off",)),)))
    assert _values(box, dn, "description") == {"off"}


def test_a_failing_producer_still_reports_every_change_that_was_applied(box: Box) -> None:
    """When the stream of changes breaks midway, every change the directory applied
    is reported before the error propagates, so a run's counts match the directory."""

    def changes() -> Iterator[Change]:
        for i in range(150):
            yield person(box.dn(f"uid=p{i}"), f"p{i}")
        raise RuntimeError("the source went away")

    succeeded = 0
    with pytest.raises(RuntimeError, match="went away"):
        for outcome in box.directory.apply(changes()):
            assert outcome.error is None
            succeeded += 1
    assert succeeded == len(box.find("(uid=p*)"))
