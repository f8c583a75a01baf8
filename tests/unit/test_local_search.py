"""Searches of the embedded directory: scopes, filters as slapd evaluates them,
attribute selection, paging and streaming."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.connectors.local import LocalDirectory
from idsync.connectors.local.storage import PAGE
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs, Scope
from idsync.errors import ConfigError, NotFoundError

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=People,{SUFFIX}"
GROUPS = f"ou=Groups,{SUFFIX}"


def create(dn: str, **attrs: list[str] | str) -> Change:
    return Change(ChangeOp.CREATE, dn, key=dn, attrs=Attrs(attrs))


@pytest.fixture
def d(tmp_path: Path) -> Iterator[LocalDirectory]:
    with LocalDirectory(tmp_path / "dir.db", SUFFIX) as directory:
        outcomes = list(directory.apply([
            create(PEOPLE, objectClass="organizationalUnit", ou="People"),
            create(GROUPS, objectClass="organizationalUnit", ou="Groups"),
            create(f"uid=ann,{PEOPLE}", objectClass="inetOrgPerson", cn="Ann Lee", sn="Lee",
                   mail="ann@example.org", title="Engineer"),
            create(f"uid=bo,{PEOPLE}", objectClass=["inetOrgPerson", "posixAccount"], cn="Bo  Smith", sn="Smith",
                   uidNumber="1005", gidNumber="100", homeDirectory="/home/bo"),
            create(f"uid=cy,{PEOPLE}", objectClass=["inetOrgPerson", "posixAccount"], cn="Cy Lee", sn="Lee",
                   uidNumber="200", gidNumber="100", homeDirectory="/home/cy", labeledURI="http://Cy"),
            create(f"cn=staff,{GROUPS}", objectClass="groupOfNames", member=[f"uid=ann,{PEOPLE}", f"uid=bo,{PEOPLE}"]),
        ]))
        assert all(o.error is None for o in outcomes), [o.error for o in outcomes if o.error]
        yield directory


def uids(d: LocalDirectory, filterstr: str, base: str = SUFFIX, scope: Scope = Scope.SUB) -> list[str]:
    return [e.dn.split(",")[0].split("=")[1] for e in d.search(base, scope, filterstr)]


def test_scopes_and_parent_first_order(d: LocalDirectory) -> None:
    assert [e.dn for e in d.search(PEOPLE, Scope.BASE)] == [PEOPLE]
    assert uids(d, "(objectClass=*)", PEOPLE, Scope.ONE) == ["ann", "bo", "cy"]
    assert uids(d, "(objectClass=*)", SUFFIX, Scope.ONE) == ["Groups", "People"]
    assert uids(d, "(objectClass=*)") == ["example", "Groups", "staff", "People", "ann", "bo", "cy"]
    assert uids(d, "(uid=ann)", f"UID=ANN, ou=people,{SUFFIX}", Scope.BASE) == ["ann"]
    assert uids(d, "(uid=bo)", f"uid=ann,{PEOPLE}", Scope.BASE) == []


def test_missing_base_and_bad_filter_fail_at_the_call(d: LocalDirectory) -> None:
    with pytest.raises(NotFoundError, match="ou=Nowhere"):
        d.search(f"ou=Nowhere,{SUFFIX}")
    with pytest.raises(NotFoundError):
        d.search("dc=other,dc=com", Scope.BASE)
    with pytest.raises(ConfigError, match="invalid LDAP filter"):
        d.search(SUFFIX, Scope.SUB, "(uid=x")


@pytest.mark.parametrize(
    ("filterstr", "expected"),
    [
        ("(objectClass=person)", ["ann", "bo", "cy"]),  # superclasses match, as in slapd
        ("(objectClass=organizationalPerson)", ["ann", "bo", "cy"]),
        ("(objectClass=top)", ["example", "Groups", "staff", "People", "ann", "bo", "cy"]),
        ("(cn=bo smith)", ["bo"]),
        ("(name=lee)", ["ann", "cy"]),  # a supertype matches its subtypes (sn)
        ("(commonName=ann*)", ["ann"]),
        ("(member=UID=BO, OU=people,dc=example,DC=org)", ["staff"]),
        ("(member=*ann*)", []),  # member has no substring rule
        ("(uidNumber>=300)", ["bo"]),
        ("(uidNumber<=300)", ["cy"]),
        ("(uid>=a)", []),  # uid has no ordering rule
        ("(!(uid>=a))", []),
        ("(noSuchAttr=x)", []),
        ("(!(noSuchAttr=x))", []),
        ("(|(noSuchAttr=x)(uid=cy))", ["cy"]),
        ("(!(title=*))", ["example", "Groups", "staff", "People", "bo", "cy"]),
        ("(labeledURI=http://cy)", []),  # caseExactMatch
        ("(labeledURI=http://Cy)", ["cy"]),
        ("(homeDirectory=/HOME/BO)", []),  # caseExactIA5Match
        ("(mail=ANN@example.org)", ["ann"]),
        ("uid=ann", ["ann"]),
    ],
)
def test_filters_evaluate_like_slapd(d: LocalDirectory, filterstr: str, expected: list[str]) -> None:
    assert uids(d, filterstr) == expected


def test_filters_on_operational_attributes(d: LocalDirectory) -> None:
    (ann,) = d.search(f"uid=ann,{PEOPLE}", Scope.BASE, attributes=["entryUUID", "createTimestamp"])
    anchor = ann.attrs["entryUUID"][0]
    assert uids(d, f"(entryUUID={anchor.upper()})") == ["ann"]
    assert len(uids(d, f"(createTimestamp>={ann.attrs['createTimestamp'][0]})")) == 7
    assert uids(d, "(createTimestamp<=19990101000000Z)") == []
    # a filter on the times reads them though the search returns none of them (they are read only when needed)
    assert len(uids(d, "(modifyTimestamp>=19990101000000Z)")) == 7
    assert uids(d, "(&(objectClass=*)(!(modifyTimestamp>=19990101000000Z)))") == []
    assert uids(d, f"(entryDN=uid=ann,{PEOPLE})") == ["ann"]


def test_attribute_selection(d: LocalDirectory) -> None:
    dn = f"uid=cy,{PEOPLE}"

    def names(attributes: list[str] | None) -> set[str]:
        (entry,) = d.search(dn, Scope.BASE, attributes=attributes)
        return set(entry.attrs)

    user = {"objectClass", "cn", "sn", "uid", "uidNumber", "gidNumber", "homeDirectory", "labeledURI"}
    assert names(None) == user
    assert names(["*"]) == user
    assert names(["1.1"]) == set()
    assert names(["commonName", "UIDNUMBER", "noSuchAttr"]) == {"cn", "uidNumber"}
    assert names(["name"]) == {"cn", "sn"}
    assert names(["+"]) >= {"entryUUID", "createTimestamp", "modifyTimestamp"}
    assert names(["*", "entryUUID"]) == user | {"entryUUID"}


def test_more_than_a_page_streams_in_key_order(tmp_path: Path) -> None:
    count = PAGE * 2 + 37
    with LocalDirectory(tmp_path / "big.db", SUFFIX) as d:
        changes = [create(PEOPLE, objectClass="organizationalUnit", ou="People")]
        changes += [create(f"uid=p{i:05d},{PEOPLE}", objectClass="account", uid=f"p{i:05d}") for i in range(count)]
        assert all(o.error is None for o in d.apply(changes))

        found = [e.attrs["uid"][0] for e in d.search(PEOPLE, Scope.ONE, "(uid=p*)", ["uid"])]
        assert found == [f"p{i:05d}" for i in range(count)]
        assert sum(1 for _ in d.search(SUFFIX, Scope.SUB)) == count + 2

        # Writing while a search is being read: the search goes on over its pages.
        seen = 0
        for entry in d.search(PEOPLE, Scope.ONE, "(objectClass=account)", ["uid"]):
            seen += 1
            if seen % 500 == 0:
                mod = Modification(ModOp.ADD, "description", ("seen",))
                (outcome,) = d.apply([Change(ChangeOp.UPDATE, entry.dn, key="x", mods=(mod,))])
                assert outcome.error is None
        assert seen == count
        assert len(list(d.search(PEOPLE, Scope.ONE, "(description=seen)"))) == count // 500


def test_search_reads_rows_when_iterated(d: LocalDirectory) -> None:
    results = d.search(PEOPLE, Scope.ONE)
    assert all(o.error is None for o in d.apply([create(f"uid=dee,{PEOPLE}", objectClass="account", uid="dee")]))
    assert [e.dn.split(",")[0] for e in results] == ["uid=ann", "uid=bo", "uid=cy", "uid=dee"]
