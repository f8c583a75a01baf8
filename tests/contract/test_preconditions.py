"""A stored plan applied with its preconditions, on every directory.

For each kind of change: a change made meanwhile is a conflict (left
untouched), a change found in place is already applied (skipped, counted
unchanged), and a change made after the check but before the write is
refused by the directory itself (the plan's values are named in the modify)
and reported as a conflict rather than overwritten.

"Meanwhile" is between the preview and the apply: the destination is read
after the edit. "After the check" is between that read and the write: the
read is taken before the edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.definitions import JobDefinition
from idsync.domain.entry import Attrs
from idsync.domain.results import Counts, ErrorItem
from idsync.engine import runner
from tests.contract.conftest import Box, ou, person, update
from tests.jobs import job_definition


class Recorder:
    def __init__(self) -> None:
        self.errors_seen: list[ErrorItem] = []

    def changes(self, batch: Sequence[Change]) -> None:
        raise AssertionError("applying a plan records no new changes")

    def errors(self, items: Sequence[ErrorItem]) -> None:
        self.errors_seen.extend(items)

    def progress(self, counts: Counts) -> None:
        pass


def job(box: Box) -> JobDefinition:
    return job_definition(
        [
            {"attribute": "employeeNumber", "from": "id", "key": True},
            {"attribute": "uid", "from": "id"},
            {"attribute": "cn", "from": "name"},
            {"attribute": "sn", "from": "name"},
            {"attribute": "mail", "from": "mail"},
            {"attribute": "telephoneNumber", "from": "phone"},
            {"attribute": "preferredLanguage", "from": "lang"},
            {"attribute": "member", "from": "members"},
        ],
        box.base,
        destination={"store": "dir", "container": box.base, "rdn_attribute": "uid"},
        actions={"on_missing": "disable", "disable_with": {"attribute": "description", "value": "disabled"}},
    )


def read(box: Box) -> dict[str, Attrs]:
    """The destination as the apply reads it before writing."""
    return runner.read_scope(job(box), box.directory)


def apply(box: Box, *changes: Change, current: dict[str, Attrs] | None = None) -> tuple[Counts, list[str]]:
    """Apply *changes* as a stored plan: against *current* (default: read now)."""
    known = read(box) if current is None else current
    preconditions = runner.job_preconditions(job(box), box.directory, known)
    recorder = Recorder()
    counts = runner.apply_plan(list(changes), box.directory, preconditions, recorder)
    return counts, [e.message for e in recorder.errors_seen]


def employee(box: Box, uid: str, **extra: Any) -> str:
    dn = box.dn(f"uid={uid}")
    box.apply_ok(person(dn, uid, employeeNumber=uid.upper(), **extra))
    return dn


def seen(box: Box, dn: str) -> Attrs:
    """The entry as a preview saw it (with its anchor)."""
    entry = box.get(dn, ["*", "entryUUID"])
    assert entry is not None
    return entry.attrs


def values(box: Box, dn: str, attribute: str) -> set[str]:
    entry = box.get(dn)
    assert entry is not None, f"{dn} should exist"
    return set(entry.attrs.get_values(attribute))


def replace_mod(attrs: Attrs, attribute: str, *new: str) -> Modification:
    return Modification(ModOp.REPLACE, attribute, tuple(new), attrs.get_values(attribute))


def planned_update(box: Box, dn: str, *mods: tuple[str, tuple[str, ...]], op: ChangeOp = ChangeOp.UPDATE) -> Change:
    attrs = seen(box, dn)
    return Change(op, dn, key=dn, mods=tuple(replace_mod(attrs, a, *v) for a, v in mods), anchor=attrs.first("entryUUID"))


def only(counts: Counts, **expected: int) -> None:
    """*counts* hold *expected* and zero elsewhere (reading aside)."""
    got = {k: v for k, v in counts.to_dict().items() if v and k != "read"}
    assert got == expected


# ---------------------------------------------------------------- create


def planned_create(box: Box, uid: str, sn: str = "Planned") -> Change:
    return person(box.dn(f"uid={uid}"), uid, employeeNumber=uid.upper(), sn=sn)


def test_create_conflicts_with_an_object_created_meanwhile(box: Box) -> None:
    change = planned_create(box, "c1")
    employee(box, "c1", sn="Someone Else")
    counts, errors = apply(box, change)
    only(counts, conflicts=1)
    assert "created since the plan was computed" in errors[0] and "left untouched" in errors[0]
    assert values(box, change.dn, "sn") == {"Someone Else"}


def test_create_found_in_place_is_already_applied(box: Box) -> None:
    change = planned_create(box, "c2")
    box.apply_ok(change)  # an earlier apply of the plan wrote it, then failed
    counts, errors = apply(box, change)
    only(counts, unchanged=1)
    assert errors == []


def test_create_refused_by_the_directory_after_the_check_is_a_conflict(box: Box) -> None:
    change = planned_create(box, "c3")
    before = read(box)
    employee(box, "c3", sn="Someone Else")
    counts, _ = apply(box, change, current=before)
    only(counts, conflicts=1)
    assert values(box, change.dn, "sn") == {"Someone Else"}


def test_create_of_a_new_object_is_written(box: Box) -> None:
    change = planned_create(box, "c4")
    counts, _ = apply(box, change)
    only(counts, created=1)


# ---------------------------------------------------------------- update


def test_update_of_an_attribute_changed_meanwhile_is_a_conflict(box: Box) -> None:
    dn = employee(box, "u1", sn="Old", mail="u1@example.org")
    change = planned_update(box, dn, ("sn", ("New",)), ("mail", ("new@example.org",)))
    box.apply_ok(update(dn, (ModOp.REPLACE, "sn", ["Other"])))
    counts, errors = apply(box, change)
    only(counts, conflicts=1)
    assert "'sn' changed since the plan was computed" in errors[0]
    assert values(box, dn, "sn") == {"Other"} and values(box, dn, "mail") == {"u1@example.org"}


def test_update_found_in_place_is_already_applied_and_the_rest_written(box: Box) -> None:
    dn = employee(box, "u2", sn="Old", mail="u2@example.org")
    change = planned_update(box, dn, ("sn", ("New",)), ("mail", ("new@example.org",)))
    box.apply_ok(update(dn, (ModOp.REPLACE, "sn", ["New"])))
    counts, _ = apply(box, change)
    only(counts, updated=1)
    assert values(box, dn, "mail") == {"new@example.org"}
    box.apply_ok(update(dn, (ModOp.REPLACE, "description", ["edited"])))  # an attribute the plan does not touch
    counts, _ = apply(box, change)
    only(counts, unchanged=1)


def test_update_changed_after_the_check_is_refused_by_the_directory(box: Box) -> None:
    """The modify names the values it replaces: the directory refuses it, nothing is overwritten."""
    dn = employee(box, "u3", sn="Old", mail=["a@example.org", "b@example.org"])
    change = planned_update(box, dn, ("sn", ("New",)), ("mail", ("c@example.org",)))
    before = read(box)
    box.apply_ok(update(dn, (ModOp.REPLACE, "mail", ["b@example.org", "z@example.org"])))
    counts, errors = apply(box, change, current=before)
    only(counts, conflicts=1)
    assert "'mail' changed since the plan was computed" in errors[0]
    assert values(box, dn, "mail") == {"b@example.org", "z@example.org"} and values(box, dn, "sn") == {"Old"}


def test_a_single_valued_attribute_given_a_value_after_the_check_is_refused(box: Box) -> None:
    dn = employee(box, "u4")
    change = planned_update(box, dn, ("preferredLanguage", ("en",)))
    before = read(box)
    box.apply_ok(update(dn, (ModOp.REPLACE, "preferredLanguage", ["fr"])))
    counts, _ = apply(box, change, current=before)
    only(counts, conflicts=1)
    assert values(box, dn, "preferredLanguage") == {"fr"}


def test_a_multi_valued_attribute_seen_empty_keeps_a_value_added_after_the_check(box: Box) -> None:
    """Documented limit: a value add cannot tell that a multi-valued attribute
    seen empty got a value meanwhile; that value stays, beside the new one."""
    dn = employee(box, "u5")
    change = planned_update(box, dn, ("telephoneNumber", ("111",)))
    before = read(box)
    box.apply_ok(update(dn, (ModOp.ADD, "telephoneNumber", ["999"])))
    counts, _ = apply(box, change, current=before)
    only(counts, updated=1)
    assert values(box, dn, "telephoneNumber") == {"111", "999"}


def test_which_attributes_can_have_values_deleted_by_value(box: Box) -> None:
    checks = box.directory.checks_values  # type: ignore[attr-defined]
    assert [checks(a) for a in ("mail", "SN", "member", "jpegPhoto", "facsimileTelephoneNumber", "nope")] == [
        True, True, True, False, False, False,
    ]
    dn = employee(box, "u6", facsimileTelephoneNumber="+1 555")
    message = box.fails(update(dn, (ModOp.DELETE, "facsimileTelephoneNumber", ["+1 555"])))
    assert "Inappropriate matching" in message and "no equality matching rule" in message


def test_an_update_of_a_deleted_object_is_a_conflict(box: Box) -> None:
    dn = employee(box, "u7", sn="Old")
    change = planned_update(box, dn, ("sn", ("New",)))
    box.apply_ok(Change(ChangeOp.DELETE, dn, key="u7"))
    counts, errors = apply(box, change)
    only(counts, conflicts=1)
    assert "deleted or renamed since" in errors[0]


# ---------------------------------------------------------------- delete


def planned_delete(box: Box, dn: str) -> Change:
    attrs = seen(box, dn)
    return Change(ChangeOp.DELETE, dn, key=attrs.first("employeeNumber") or "", anchor=attrs.first("entryUUID"))


def test_delete_of_an_object_already_gone_is_already_applied(box: Box) -> None:
    dn = employee(box, "d1")
    change = planned_delete(box, dn)
    box.apply_ok(Change(ChangeOp.DELETE, dn, key="d1"))
    counts, errors = apply(box, change)
    only(counts, unchanged=1)
    assert errors == []


def test_delete_of_an_object_replaced_meanwhile_is_a_conflict(box: Box) -> None:
    dn = employee(box, "d2")
    change = planned_delete(box, dn)
    box.apply_ok(Change(ChangeOp.DELETE, dn, key="d2"))
    employee(box, "d2")  # same DN and key, another object
    counts, errors = apply(box, change)
    only(counts, conflicts=1)
    assert "another object has this DN" in errors[0]
    assert box.get(dn) is not None


def test_delete_of_an_object_whose_key_changed_meanwhile_is_a_conflict(box: Box) -> None:
    dn = employee(box, "d3")
    change = planned_delete(box, dn)
    box.apply_ok(update(dn, (ModOp.REPLACE, "employeeNumber", ["D3-NEW"])))
    counts, errors = apply(box, change)
    only(counts, conflicts=1)
    assert "its employeeNumber changed since" in errors[0]
    assert box.get(dn) is not None


def test_delete_of_an_object_gone_after_the_check_is_already_applied(box: Box) -> None:
    dn = employee(box, "d4")
    change = planned_delete(box, dn)
    before = read(box)
    box.apply_ok(Change(ChangeOp.DELETE, dn, key="d4"))
    counts, _ = apply(box, change, current=before)
    only(counts, unchanged=1)


# ---------------------------------------------------------------- disable


def test_disable_of_an_object_changed_meanwhile_is_a_conflict(box: Box) -> None:
    dn = employee(box, "x1", description="active")
    change = planned_update(box, dn, ("description", ("disabled",)), op=ChangeOp.DISABLE)
    box.apply_ok(update(dn, (ModOp.REPLACE, "description", ["on leave"])))
    counts, _ = apply(box, change)
    only(counts, conflicts=1)
    assert values(box, dn, "description") == {"on leave"}


def test_disable_found_in_place_is_already_applied(box: Box) -> None:
    dn = employee(box, "x2", description="active")
    change = planned_update(box, dn, ("description", ("disabled",)), op=ChangeOp.DISABLE)
    box.apply_ok(update(dn, (ModOp.REPLACE, "description", ["disabled"])))
    counts, _ = apply(box, change)
    only(counts, unchanged=1)


def test_disable_changed_after_the_check_is_refused_by_the_directory(box: Box) -> None:
    dn = employee(box, "x3", description="active")
    change = planned_update(box, dn, ("description", ("disabled",)), op=ChangeOp.DISABLE)
    before = read(box)
    box.apply_ok(update(dn, (ModOp.REPLACE, "description", ["on leave"])))
    counts, _ = apply(box, change, current=before)
    only(counts, conflicts=1)
    assert values(box, dn, "description") == {"on leave"}


# ---------------------------------------------------------------- move


@pytest.fixture
def attic(box: Box) -> str:
    dn = box.dn("ou=attic")
    box.apply_ok(ou(dn, "attic"))
    return dn


def planned_move(box: Box, dn: str, to: str) -> Change:
    attrs = seen(box, dn)
    rdn = dn.split(",", 1)[0]
    return Change(ChangeOp.MOVE, dn, key=attrs.first("employeeNumber") or "", new_dn=f"{rdn},{to}",
                  anchor=attrs.first("entryUUID"))


def test_move_of_an_object_deleted_meanwhile_is_a_conflict(box: Box, attic: str) -> None:
    dn = employee(box, "m1")
    change = planned_move(box, dn, attic)
    box.apply_ok(Change(ChangeOp.DELETE, dn, key="m1"))
    counts, errors = apply(box, change)
    only(counts, conflicts=1)
    assert "deleted or renamed since" in errors[0]


def test_move_found_in_place_is_already_applied(box: Box, attic: str) -> None:
    dn = employee(box, "m2")
    change = planned_move(box, dn, attic)
    box.apply_ok(change)
    counts, _ = apply(box, change)
    only(counts, unchanged=1)


def test_move_of_an_object_replaced_meanwhile_is_a_conflict(box: Box, attic: str) -> None:
    dn = employee(box, "m3")
    change = planned_move(box, dn, attic)
    box.apply_ok(Change(ChangeOp.DELETE, dn, key="m3"))
    employee(box, "m3")
    counts, _ = apply(box, change)
    only(counts, conflicts=1)
    assert box.get(dn) is not None and box.get(change.new_dn or "") is None


def test_move_is_written(box: Box, attic: str) -> None:
    dn = employee(box, "m4")
    change = planned_move(box, dn, attic)
    counts, _ = apply(box, change)
    only(counts, moved=1)
    assert box.get(dn) is None and box.get(change.new_dn or "") is not None


# ---------------------------------------------------------------- membership


@pytest.fixture
def group(box: Box) -> str:
    """A group, outside the job's scope (of people): the apply looks it up by its DN."""
    dn = box.dn("cn=staff")
    box.apply_ok(Change(ChangeOp.CREATE, dn, key="staff", attrs=Attrs({
        "objectClass": ["groupOfNames"], "cn": ["staff"], "member": [box.dn("uid=a")],
    })))
    return dn


def member_change(box: Box, group: str, op: ModOp, *members: str) -> Change:
    before = seen(box, group).get_values("member")
    return Change(ChangeOp.UPDATE, group, key="STAFF", mods=(Modification(op, "member", members, before),))


def test_membership_add_goes_on_when_other_members_changed_meanwhile(box: Box, group: str) -> None:
    change = member_change(box, group, ModOp.ADD, box.dn("uid=b"))
    box.apply_ok(update(group, (ModOp.ADD, "member", [box.dn("uid=c")])))
    counts, _ = apply(box, change)
    only(counts, updated=1)
    assert len(values(box, group, "member")) == 3


def test_membership_add_of_a_member_present_is_already_applied(box: Box, group: str) -> None:
    change = member_change(box, group, ModOp.ADD, box.dn("uid=b"))
    box.apply_ok(update(group, (ModOp.ADD, "member", [box.dn("uid=b")])))
    counts, _ = apply(box, change)
    only(counts, unchanged=1)


def test_membership_add_of_a_member_added_after_the_check_is_already_applied(box: Box, group: str) -> None:
    change = member_change(box, group, ModOp.ADD, box.dn("uid=b"))
    before = read(box)
    box.apply_ok(update(group, (ModOp.ADD, "member", [box.dn("uid=b")])))
    counts, errors = apply(box, change, current=before)
    only(counts, unchanged=1)
    assert errors == []


def test_membership_remove_of_a_member_absent_is_already_applied(box: Box, group: str) -> None:
    box.apply_ok(update(group, (ModOp.ADD, "member", [box.dn("uid=b")])))
    change = member_change(box, group, ModOp.DELETE, box.dn("uid=b"))
    box.apply_ok(update(group, (ModOp.DELETE, "member", [box.dn("uid=b")])))
    counts, _ = apply(box, change)
    only(counts, unchanged=1)
    box.apply_ok(update(group, (ModOp.ADD, "member", [box.dn("uid=c")])))
    counts, _ = apply(box, member_change(box, group, ModOp.DELETE, box.dn("uid=a")))
    only(counts, updated=1)
    assert values(box, group, "member") == {box.dn("uid=c")}


def test_membership_remove_of_a_member_removed_after_the_check_is_already_applied(box: Box, group: str) -> None:
    box.apply_ok(update(group, (ModOp.ADD, "member", [box.dn("uid=b")])))
    change = member_change(box, group, ModOp.DELETE, box.dn("uid=b"))
    before = read(box)
    box.apply_ok(update(group, (ModOp.DELETE, "member", [box.dn("uid=b")])))
    counts, _ = apply(box, change, current=before)
    only(counts, unchanged=1)
