"""The embedded directory: tree rules, LDAP modify semantics, moves, operational
attributes, persistence and the factory. Schema checks, searches and crash
safety have their own test_local_*.py files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from idsync.connectors.base import Directory, factory_for
from idsync.connectors.local import LocalDirectory, open_local_directory
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.definitions import LocalStore
from idsync.domain.entry import Attrs, Entry, Scope
from idsync.errors import ConfigError, ConnectorError, NotFoundError, RecordError

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=People,{SUFFIX}"


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 10, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def person(uid: str, parent: str = PEOPLE, **extra: Iterable[str] | str) -> Change:
    attrs: dict[str, Iterable[str] | str] = {
        "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
        "uid": uid, "cn": f"User {uid}", "sn": uid.title(),
    }
    attrs.update(extra)
    return Change(ChangeOp.CREATE, f"uid={uid},{parent}", key=uid, attrs=Attrs(attrs))


def ou(dn: str) -> Change:
    name = dn.split(",", 1)[0].split("=", 1)[1]
    return Change(ChangeOp.CREATE, dn, key=name, attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": [name]}))


def modify(dn: str, *mods: tuple[ModOp, str, tuple[str, ...]]) -> Change:
    return Change(ChangeOp.UPDATE, dn, key="k", mods=tuple(Modification(op, a, v) for op, a, v in mods))


def apply_one(d: LocalDirectory, change: Change) -> RecordError | None:
    (outcome,) = d.apply([change])
    assert outcome.change is change
    return outcome.error


def ok(d: LocalDirectory, *changes: Change) -> None:
    errors = [o.error for o in d.apply(changes) if o.error]
    assert not errors, errors[0]


def fails(d: LocalDirectory, change: Change, *fragments: str) -> str:
    error = apply_one(d, change)
    assert error is not None, f"{change.op} {change.dn} should fail"
    for fragment in fragments:
        assert fragment.lower() in error.message.lower(), error.message
    return error.message


def get(d: LocalDirectory, dn: str, attributes: list[str] | None = None) -> Entry:
    (entry,) = d.search(dn, Scope.BASE, "(objectClass=*)", attributes)
    return entry


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def d(tmp_path: Path, clock: Clock) -> Iterator[LocalDirectory]:
    directory = LocalDirectory(tmp_path / "dir.db", SUFFIX, clock=clock)
    ok(directory, ou(PEOPLE))
    yield directory
    directory.close()


def test_implements_the_directory_protocol(d: LocalDirectory) -> None:
    assert isinstance(d, Directory)


def test_suffix_entry_created_on_first_open(d: LocalDirectory) -> None:
    entry = get(d, "DC=Example, DC=Org")
    assert entry.dn == SUFFIX
    assert entry.attrs["objectClass"] == ("top", "dcObject", "organization")
    assert entry.attrs["dc"] == ("example",)
    assert entry.attrs["o"] == ("example",)


@pytest.mark.parametrize(
    ("suffix", "structural"),
    [("o=Acme", "organization"), ("ou=Directory,o=Acme", "organizationalUnit"), ("c=DE", "country"),
     ("cn=root", "organizationalRole"), ("description=x", "organizationalUnit")],
)
def test_other_suffix_shapes_get_a_structural_class(tmp_path: Path, suffix: str, structural: str) -> None:
    with LocalDirectory(tmp_path / "x.db", suffix) as directory:
        entry = get(directory, suffix, ["+", "*"])
        assert entry.attrs["structuralObjectClass"] == (structural,)


def test_reopening_with_another_suffix_is_refused(tmp_path: Path) -> None:
    LocalDirectory(tmp_path / "dir.db", SUFFIX).close()
    with pytest.raises(ConfigError, match="holds suffix dc=example,dc=org"):
        LocalDirectory(tmp_path / "dir.db", "dc=other,dc=org")


def test_test_describes_the_store(d: LocalDirectory, tmp_path: Path) -> None:
    ok(d, person("ada"))
    assert d.test() == f"embedded directory {tmp_path / 'dir.db'}, suffix {SUFFIX}, 3 entries"


def test_closed_directory_refuses_work(d: LocalDirectory) -> None:
    d.close()
    with pytest.raises(ConnectorError, match="closed"):
        d.test()
    with pytest.raises(ConnectorError, match="closed"):
        list(d.apply([person("x")]))


# ------------------------------------------------------------------ the tree


def test_add_needs_an_existing_parent(d: LocalDirectory) -> None:
    fails(d, person("kim", parent=f"ou=Nowhere,{SUFFIX}"), "uid=kim,ou=nowhere", "no such object",
          "ou=nowhere,dc=example,dc=org")


def test_add_outside_the_suffix_is_refused(d: LocalDirectory) -> None:
    fails(d, ou("ou=x,dc=other,dc=com"), "unwilling", "suffix")


def test_add_of_an_existing_dn_fails_whatever_its_spelling(d: LocalDirectory) -> None:
    ok(d, person("jo"))
    fails(d, person("JO", parent="OU=people, DC=example,dc=org"), "already exists")


def test_dn_keeps_the_parents_spelling(d: LocalDirectory) -> None:
    ok(d, person("ann", parent="ou=PEOPLE,dc=Example,dc=org"))
    (entry,) = d.search(PEOPLE, Scope.ONE, "(uid=ann)")
    assert entry.dn == f"uid=ann,{PEOPLE}"


def test_invalid_dn_is_a_record_error(d: LocalDirectory) -> None:
    change = Change(ChangeOp.CREATE, "uid=x,,dc=org", key="x", attrs=Attrs({"objectClass": ["account"]}))
    fails(d, change, "invalid dn syntax")


def test_delete_leaf_non_leaf_and_missing(d: LocalDirectory) -> None:
    ok(d, person("eve"))
    fails(d, Change(ChangeOp.DELETE, PEOPLE, key="p"), "not allowed on non-leaf")
    ok(d, Change(ChangeOp.DELETE, f"UID=EVE,{PEOPLE}", key="eve"))
    fails(d, Change(ChangeOp.DELETE, f"uid=eve,{PEOPLE}", key="eve"), "no such object")
    ok(d, Change(ChangeOp.DELETE, PEOPLE, key="p"))
    with pytest.raises(NotFoundError):
        d.search(PEOPLE)


def test_rdn_value_is_added_when_missing_from_the_attributes(d: LocalDirectory) -> None:
    change = Change(ChangeOp.CREATE, f"uid=nora,{PEOPLE}", key="nora",
                    attrs=Attrs({"objectClass": ["inetOrgPerson"], "cn": ["Nora"], "sn": ["N"]}))
    ok(d, change)
    assert get(d, change.dn).attrs["uid"] == ("nora",)


def test_attribute_names_case_insensitive_with_schema_spelling(d: LocalDirectory) -> None:
    ok(d, person("dee", MAIL="d@example.org", commonName="Dee Dee", GIVENNAME="Dee"))
    ok(d, modify(f"uid=dee,{PEOPLE}", (ModOp.ADD, "Mail", ("e@example.org",))))
    attrs = get(d, f"uid=dee,{PEOPLE}").attrs
    assert set(attrs) == {"objectClass", "uid", "cn", "sn", "mail", "givenName"}
    assert attrs["cn"] == ("User dee", "Dee Dee")
    assert attrs["mail"] == ("d@example.org", "e@example.org")


def test_duplicate_values_in_an_add_are_refused(d: LocalDirectory) -> None:
    fails(d, person("dup", mail=["a@example.org", "A@EXAMPLE.org"]), "type or value exists", "mail")


# ------------------------------------------------------------------ modify semantics


def test_modify_add_delete_replace(d: LocalDirectory) -> None:
    dn = f"uid=bob,{PEOPLE}"
    ok(d, person("bob", mail=["b1@example.org", "b2@example.org"]))
    ok(d, modify(dn, (ModOp.ADD, "mail", ("b3@example.org",)), (ModOp.DELETE, "mail", ("B1@EXAMPLE.ORG",)),
                 (ModOp.REPLACE, "title", ("Eng", "Lead")), (ModOp.ADD, "description", ("new",))))
    attrs = get(d, dn).attrs
    assert attrs["mail"] == ("b2@example.org", "b3@example.org")
    assert attrs["title"] == ("Eng", "Lead")
    assert attrs["description"] == ("new",)


def test_modify_errors_follow_ldap(d: LocalDirectory) -> None:
    dn = f"uid=pam,{PEOPLE}"
    ok(d, person("pam", mail="pam@example.org"))
    fails(d, modify(dn, (ModOp.ADD, "mail", ("PAM@example.org",))), "type or value exists", "mail")
    fails(d, modify(dn, (ModOp.DELETE, "mail", ("other@example.org",))), "no such attribute", "no such value")
    fails(d, modify(dn, (ModOp.DELETE, "title", ())), "no such attribute", "title")
    fails(d, modify(dn, (ModOp.DELETE, "title", ("x",))), "no such attribute", "title")
    fails(d, modify(f"uid=nobody,{PEOPLE}", (ModOp.REPLACE, "title", ("x",))), "no such object")
    assert get(d, dn).attrs["mail"] == ("pam@example.org",)


def test_empty_delete_and_replace_remove_the_attribute(d: LocalDirectory) -> None:
    dn = f"uid=cy,{PEOPLE}"
    ok(d, person("cy", mail=["c1@example.org", "c2@example.org"], title="Boss"))
    ok(d, modify(dn, (ModOp.DELETE, "mail", ()), (ModOp.REPLACE, "title", ()), (ModOp.REPLACE, "l", ())))
    attrs = get(d, dn).attrs
    assert "mail" not in attrs and "title" not in attrs


def test_deleting_every_value_removes_the_attribute(d: LocalDirectory) -> None:
    dn = f"uid=cal,{PEOPLE}"
    ok(d, person("cal", mail=["c1@example.org"]))
    ok(d, modify(dn, (ModOp.DELETE, "mail", ("c1@example.org",))))
    assert "mail" not in get(d, dn).attrs


def test_a_failed_modification_leaves_the_entry_untouched(d: LocalDirectory, clock: Clock) -> None:
    dn = f"uid=rae,{PEOPLE}"
    ok(d, person("rae", title="Eng"))
    before = get(d, dn, ["*", "+"])
    clock.now += timedelta(minutes=5)
    fails(d, modify(dn, (ModOp.REPLACE, "title", ("Boss",)), (ModOp.DELETE, "mail", ("x@y",))))
    assert get(d, dn, ["*", "+"]) == before


def test_removing_the_rdn_value_is_a_naming_violation(d: LocalDirectory) -> None:
    dn = f"uid=ray,{PEOPLE}"
    ok(d, person("ray"))
    fails(d, modify(dn, (ModOp.DELETE, "uid", ("ray",))), "naming violation", "uid")
    ok(d, modify(dn, (ModOp.REPLACE, "uid", ("RAY", "ray2"))))  # still holds the RDN value
    assert get(d, dn).attrs["uid"] == ("RAY", "ray2")


# ------------------------------------------------------------------ moves


def test_rename_respells_the_rdn_value(d: LocalDirectory) -> None:
    ok(d, person("fay", mail="fay@example.org"))
    ok(d, Change(ChangeOp.MOVE, f"uid=fay,{PEOPLE}", key="fay", new_dn=f"uid=Faye,{PEOPLE}"))
    attrs = get(d, f"uid=faye,{PEOPLE}").attrs
    assert attrs["uid"] == ("Faye",)
    ok(d, Change(ChangeOp.MOVE, f"uid=faye,{PEOPLE}", key="fay", new_dn=f"uid=FAYE,{PEOPLE}"))
    assert get(d, f"uid=faye,{PEOPLE}").dn == f"uid=FAYE,{PEOPLE}"


def test_move_carries_the_subtree_and_keeps_anchors(d: LocalDirectory) -> None:
    team, archive = f"ou=Team,{PEOPLE}", f"ou=Archive,{SUFFIX}"
    ok(d, ou(team), ou(archive), ou(f"ou=Sub,{team}"), person("tom", parent=team),
       person("tia", parent=f"ou=Sub,{team}"))
    uuids = {e.dn: e.attrs["entryUUID"] for e in d.search(team, attributes=["entryUUID"])}

    ok(d, Change(ChangeOp.MOVE, team, key="team", new_dn=f"ou=Crew,{archive}"))

    with pytest.raises(NotFoundError):
        d.search(team)
    moved = {e.dn: e.attrs["entryUUID"] for e in d.search(f"ou=crew,{archive}", attributes=["entryUUID", "ou"])}
    assert sorted(moved) == sorted(
        [f"ou=Crew,{archive}", f"ou=Sub,ou=Crew,{archive}", f"uid=tom,ou=Crew,{archive}",
         f"uid=tia,ou=Sub,ou=Crew,{archive}"]
    )
    assert sorted(moved.values()) == sorted(uuids.values())
    assert get(d, f"ou=Crew,{archive}").attrs["ou"] == ("Crew",)
    assert [e.dn for e in d.search(f"ou=Sub,ou=Crew,{archive}", Scope.ONE)] == [f"uid=tia,ou=Sub,ou=Crew,{archive}"]
    fails(d, Change(ChangeOp.DELETE, f"ou=Crew,{archive}", key="crew"), "non-leaf")


def test_move_then_modifications_on_the_new_dn(d: LocalDirectory) -> None:
    ok(d, ou(f"ou=Alumni,{SUFFIX}"), person("hal", title="Eng"))
    move = Change(ChangeOp.MOVE, f"uid=hal,{PEOPLE}", key="hal", new_dn=f"uid=hal2,ou=Alumni,{SUFFIX}",
                  mods=(Modification(ModOp.REPLACE, "title", ("Former",)),))
    ok(d, move)
    attrs = get(d, f"uid=hal2,ou=alumni,{SUFFIX}").attrs
    assert attrs["title"] == ("Former",) and attrs["uid"] == ("hal2",)


def test_move_failures(d: LocalDirectory) -> None:
    ok(d, person("ula"), person("val"), ou(f"ou=Team,{PEOPLE}"))
    ula = f"uid=ula,{PEOPLE}"
    fails(d, Change(ChangeOp.MOVE, ula, key="u", new_dn=f"uid=VAL,{PEOPLE}"), "already exists")
    fails(d, Change(ChangeOp.MOVE, ula, key="u", new_dn=f"uid=ula,ou=Nowhere,{SUFFIX}"), "no such object")
    fails(d, Change(ChangeOp.MOVE, f"uid=nobody,{PEOPLE}", key="n", new_dn=f"uid=x,{PEOPLE}"), "no such object")
    fails(d, Change(ChangeOp.MOVE, PEOPLE, key="p", new_dn=f"ou=x,ou=Team,{PEOPLE}"), "below itself")
    fails(d, Change(ChangeOp.MOVE, SUFFIX, key="s", new_dn="dc=other,dc=org"), "suffix")
    fails(d, Change(ChangeOp.MOVE, ula, key="u"), "new dn")
    # cn is a MUST of person: a rename away from a cn RDN may not drop its only value
    ok(d, Change(ChangeOp.CREATE, f"cn=Solo,{PEOPLE}", key="solo",
                 attrs=Attrs({"objectClass": ["person"], "cn": ["Solo"], "sn": ["S"]})))
    fails(d, Change(ChangeOp.MOVE, f"cn=Solo,{PEOPLE}", key="solo", new_dn=f"sn=S,{PEOPLE}"),
          "object class violation", "'cn'")
    # a move whose modifications fail does not move
    fails(d, Change(ChangeOp.MOVE, ula, key="u", new_dn=f"uid=ula2,{PEOPLE}",
                    mods=(Modification(ModOp.ADD, "noSuchAttributeXyz", ("1",)),)), "undefined attribute type")
    assert get(d, ula).dn == ula


# ------------------------------------------------------------------ operational attributes


def test_operational_attributes(d: LocalDirectory, clock: Clock) -> None:
    dn = f"uid=ivy,{PEOPLE}"
    ok(d, person("ivy"))
    assert not {"entryUUID", "createTimestamp", "modifyTimestamp"} & set(get(d, dn).attrs)
    attrs = get(d, dn, ["+"]).attrs
    assert set(attrs) == {"structuralObjectClass", "entryUUID", "createTimestamp", "modifyTimestamp", "entryDN",
                          "subschemaSubentry", "hasSubordinates"}
    # time-ordered, RFC 9562 version 7
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", attrs["entryUUID"][0])
    assert attrs["createTimestamp"] == attrs["modifyTimestamp"] == ("20261124101500Z",)
    assert attrs["structuralObjectClass"] == ("inetOrgPerson",)
    assert attrs["entryDN"] == (dn,)
    assert attrs["hasSubordinates"] == ("FALSE",)
    assert get(d, PEOPLE, ["hasSubordinates"]).attrs["hasSubordinates"] == ("TRUE",)
    named = get(d, dn, ["ENTRYUUID", "uid"]).attrs
    assert set(named) == {"entryUUID", "uid"}

    clock.now += timedelta(hours=1)
    ok(d, modify(dn, (ModOp.REPLACE, "title", ("x",))))
    after = get(d, dn, ["+"]).attrs
    assert after["entryUUID"] == attrs["entryUUID"]
    assert after["createTimestamp"] == ("20261124101500Z",)
    assert after["modifyTimestamp"] == ("20261124111500Z",)

    clock.now += timedelta(hours=1)
    ok(d, Change(ChangeOp.UPDATE, dn, key="ivy"))  # no modifications: nothing written
    assert get(d, dn, ["modifyTimestamp"]).attrs["modifyTimestamp"] == ("20261124111500Z",)
    ok(d, modify(dn, (ModOp.REPLACE, "title", ("x",))))  # same value: slapd still stamps it
    assert get(d, dn, ["modifyTimestamp"]).attrs["modifyTimestamp"] == ("20261124121500Z",)


def test_operational_attributes_cannot_be_written(d: LocalDirectory) -> None:
    fails(d, person("op", entryUUID="0c8c7b54-4e3b-103f-9d55-a7e36e2e2f2b"), "constraint violation", "entryUUID")
    ok(d, person("op"))
    fails(d, modify(f"uid=op,{PEOPLE}", (ModOp.REPLACE, "modifyTimestamp", ("20200101000000Z",))),
          "no user modification")


def test_entry_uuids_are_unique(d: LocalDirectory) -> None:
    ok(d, *(person(f"u{i}") for i in range(20)))
    uuids = [e.attrs["entryUUID"][0] for e in d.search(PEOPLE, Scope.ONE, attributes=["entryUUID"])]
    assert len(set(uuids)) == 20


# ------------------------------------------------------------------ apply and persistence


def test_outcomes_one_per_change_in_order_errors_do_not_stop(d: LocalDirectory) -> None:
    changes = [person("a1"), person("a1"), person("a2"), modify(f"uid=zz,{PEOPLE}", (ModOp.ADD, "title", ("t",)))]
    outcomes = list(d.apply(changes))
    assert [o.change for o in outcomes] == changes
    assert [o.error is None for o in outcomes] == [True, False, True, False]
    error = outcomes[1].error
    assert error is not None and error.key == "a1"


def test_outcomes_come_after_their_batch_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "dir.db"
    with LocalDirectory(path, batch_size=10) as writer, LocalDirectory(path) as reader:
        outcomes = writer.apply(ou(f"ou=o{i},{SUFFIX}") for i in range(25))
        first = next(outcomes)
        assert first.error is None
        seen = {e.dn for e in reader.search(SUFFIX, Scope.ONE)}
        assert {f"ou=o{i},{SUFFIX}" for i in range(10)} <= seen
        assert f"ou=o24,{SUFFIX}" not in seen
        assert len(list(outcomes)) == 24


def test_persistent_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "dir.db"
    first = LocalDirectory(path)
    second = LocalDirectory(path)
    ok(first, ou(PEOPLE), person("ada"))
    assert get(second, f"uid=ada,{PEOPLE}").attrs["uid"] == ("ada",)
    ok(second, modify(f"uid=ada,{PEOPLE}", (ModOp.ADD, "title", ("Countess",))))
    first.close()
    second.close()
    with LocalDirectory(path) as third:
        attrs = get(third, f"uid=ada,{PEOPLE}", ["*", "+"]).attrs
        assert attrs["title"] == ("Countess",)
        assert len(list(third.search(SUFFIX))) == 3


def test_open_local_directory_resolves_relative_paths_under_home(tmp_home: Path) -> None:
    definition = LocalStore(name="local", kind="local", path="dirs/main.db", suffix="dc=acme,dc=com")
    directory = factory_for("local")(definition, {})
    try:
        assert isinstance(directory, LocalDirectory)
        assert (tmp_home / "dirs" / "main.db").exists()
        assert get(directory, "dc=acme,dc=com").attrs["dc"] == ("acme",)
    finally:
        directory.close()
    absolute = tmp_home / "elsewhere.db"
    with open_local_directory(LocalStore(name="x", kind="local", path=str(absolute)), {}) as other:
        assert other.path == absolute
