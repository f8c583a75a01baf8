"""Reads: scopes, filters, projections, operational attributes, missing bases and paging."""

from __future__ import annotations

import re

import pytest

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs, Scope
from idsync.domain.filters import escape_filter_value
from idsync.errors import NotFoundError
from tests.contract.conftest import Box, ou, person

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


@pytest.fixture
def tree(box: Box) -> Box:
    """base ─ ou=a ─ uid=x, ou=b ─ uid=y;  base ─ uid=z (with a few searchable attributes)."""
    box.apply_ok(
        ou(box.dn("ou=a"), "a"),
        person(box.dn("uid=x,ou=a"), "x", cn="Xavier Lopez", mail="x@example.org", title="Engineer"),
        ou(box.dn("ou=b,ou=a"), "b"),
        person(box.dn("uid=y,ou=b,ou=a"), "y", cn="Yolanda Smith", title="Manager"),
        person(box.dn("uid=z"), "z", cn="Zoe Lopez", mail=["z@example.org", "zoe@example.org"]),
    )
    return box


def test_scopes(tree: Box) -> None:
    assert {e.dn.lower() for e in tree.find("(objectClass=*)", Scope.BASE)} == {tree.base.lower()}
    assert tree.find_rdns("(objectClass=*)", Scope.ONE) == {"a", "z"}
    assert tree.find_rdns("(objectClass=*)", Scope.SUB) == {"a", "x", "b", "y", "z"}
    assert len(tree.find("(objectClass=*)", Scope.SUB)) == 6, "a subtree search includes the base"
    assert tree.find_rdns("(objectClass=*)", Scope.ONE, base=tree.dn("ou=a")) == {"x", "b"}


def test_base_scope_filter_applies_to_the_base(tree: Box) -> None:
    assert tree.find("(uid=x)", Scope.BASE, base=tree.dn("uid=x,ou=a"))
    assert tree.find("(uid=nobody)", Scope.BASE, base=tree.dn("uid=x,ou=a")) == []


@pytest.mark.parametrize(
    ("filterstr", "expected"),
    [
        ("(uid=x)", {"x"}),
        ("(UID=X)", {"x"}),
        ("(cn=xavier lopez)", {"x"}),
        ("(objectclass=INETORGPERSON)", {"x", "y", "z"}),
        ("(cn=*lopez)", {"x", "z"}),
        ("(cn=Yol*)", {"y"}),
        ("(cn=*ande*)", set()),
        ("(cn=*land*)", {"y"}),
        ("(cn=x*l*z)", {"x"}),
        ("(mail=*)", {"x", "z"}),
        ("(mail=zoe@EXAMPLE.org)", {"z"}),
        ("(&(objectClass=inetOrgPerson)(mail=*))", {"x", "z"}),
        ("(|(uid=x)(uid=y))", {"x", "y"}),
        ("(&(objectClass=inetOrgPerson)(!(mail=*)))", {"y"}),
        ("(!(objectClass=inetOrgPerson))", {"a", "b"}),
        ("(&(|(title=engineer)(title=manager))(!(cn=*smith)))", {"x"}),
        ("(title=nobody)", set()),
        ("(noSuchAttributeXyz=1)", set()),
    ],
)
def test_filters(tree: Box, filterstr: str, expected: set[str]) -> None:
    assert tree.find_rdns(filterstr) == expected


def test_ordering_filters_compare_integers_as_numbers(box: Box) -> None:
    for uid, number in (("n5", "5"), ("n10", "10"), ("n100", "100")):
        box.apply_ok(person(
            box.dn(f"uid={uid}"), uid,
            objectClass=["inetOrgPerson", "posixAccount"],
            uidNumber=number, gidNumber="100", homeDirectory=f"/home/{uid}",
        ))
    assert box.find_rdns("(uidNumber>=10)") == {"n10", "n100"}
    assert box.find_rdns("(uidNumber<=10)") == {"n5", "n10"}
    assert box.find_rdns("(&(uidNumber>=6)(uidNumber<=99))") == {"n10"}


NASTY = ["*)(uid=*", "*", "(", ")", "a\\b", "\\", "x\x00y", "\\2a", "plain"]


def test_escaped_values_match_only_themselves(box: Box) -> None:
    for i, value in enumerate(NASTY):
        box.apply_ok(person(box.dn(f"uid=v{i}"), f"v{i}", description=value))
    for i, value in enumerate(NASTY):
        found = box.find(f"(description={escape_filter_value(value)})")
        assert [e.dn.lower() for e in found] == [box.dn(f"uid=v{i}").lower()], value
        found = box.find(f"(&(objectClass=person)(description={escape_filter_value(value)}))")
        assert len(found) == 1, value


def test_attribute_projection_is_case_insensitive(tree: Box) -> None:
    (entry,) = tree.find("(uid=z)", attributes=["CN", "Mail"])
    assert entry.attrs["cn"] == ("Zoe Lopez",)
    assert set(entry.attrs["mail"]) == {"z@example.org", "zoe@example.org"}
    assert "sn" not in entry.attrs
    assert "objectClass" not in entry.attrs
    (entry,) = tree.find("(uid=z)", attributes=["sn", "title"])
    assert entry.attrs["sn"] == ("Z",)
    assert "title" not in entry.attrs, "an absent attribute is left out"


def test_all_user_attributes_without_operational_ones(tree: Box) -> None:
    (entry,) = tree.find("(uid=x)")
    assert {"objectclass", "uid", "cn", "sn", "mail", "title"} <= {n.lower() for n in entry.attrs}
    assert "entryUUID" not in entry.attrs
    assert "modifyTimestamp" not in entry.attrs


def test_operational_attributes_when_named(tree: Box) -> None:
    entries = tree.find("(objectClass=inetOrgPerson)", attributes=["entryUUID", "modifyTimestamp", "uid"])
    assert len(entries) == 3
    uuids = set()
    for entry in entries:
        (anchor,) = entry.attrs["entryUUID"]
        assert UUID.match(anchor), anchor
        uuids.add(anchor.lower())
        (stamp,) = entry.attrs["modifyTimestamp"]
        assert re.match(r"^\d{14}(\.\d+)?Z$", stamp), stamp
        assert "cn" not in entry.attrs
    assert len(uuids) == 3


def test_entry_uuid_is_stable_across_modifications(tree: Box) -> None:
    dn = tree.dn("uid=z")
    before = tree.get(dn, ["entryUUID"])
    tree.apply_ok(Change(ChangeOp.UPDATE, dn, key="z", mods=(Modification(ModOp.REPLACE, "title", ("New",)),)))
    after = tree.get(dn, ["entryUUID", "title"])
    assert before is not None and after is not None
    assert after.attrs["entryUUID"] == before.attrs["entryUUID"]
    assert after.attrs["title"] == ("New",)


def test_search_under_a_missing_base_raises_not_found(box: Box) -> None:
    with pytest.raises(NotFoundError):
        list(box.directory.search(box.dn("ou=missing"), Scope.SUB, "(objectClass=*)"))
    with pytest.raises(NotFoundError):
        list(box.directory.search(box.dn("uid=missing"), Scope.BASE, "(objectClass=*)"))


def test_more_entries_than_a_page_all_come_back_once(box: Box) -> None:
    count = 2500
    changes = [
        Change(ChangeOp.CREATE, box.dn(f"uid=p{i:05d}"), key=f"p{i}", attrs=Attrs({
            "objectClass": ["inetOrgPerson"], "uid": [f"p{i:05d}"], "cn": [f"P {i}"], "sn": ["P"],
        }))
        for i in range(count)
    ]
    box.apply_ok(*changes)

    found = box.find("(objectClass=inetOrgPerson)", Scope.ONE, ["uid"])

    assert len(found) == count
    assert {e.attrs["uid"][0] for e in found} == {f"p{i:05d}" for i in range(count)}
    assert len({e.dn.lower() for e in found}) == count
