"""Attribute indexes of the embedded directory: used by equality and presence
searches, the same results as without them, kept right by every write,
rebuilt when the indexed attributes change, built when an old file is opened."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from idsync.connectors.local import LocalDirectory
from idsync.connectors.local.storage import _IDS_EQUAL, _IDS_PRESENT, FORMAT, dn_key
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs, Scope
from idsync.errors import ConfigError

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=People,{SUFFIX}"
GROUPS = f"ou=Groups,{SUFFIX}"
FILTERS = (
    "(uid=u0007)", "(UID=U0007 )", "(cn=First 3 Last13)", "(mail=*)", "(member=*)", "(ou=people)",
    "(&(objectClass=person)(uid=u0042))", "(&(uid=u0042)(title=Boss))", "(|(uid=u0001)(mail=user2@example.org))",
    "(|(uid=u0001)(title=Boss))", "(member=uid=U0003,ou=people,dc=example,dc=org)", "(objectClass=groupOfNames)",
    "(name=First 1 Last11)", "(!(uid=u0001))", "(uid=nobody)", "(&(mail=*)(!(uid=u0005)))", "(objectClass=top)",
)


def _people(n: int) -> list[Change]:
    changes = [
        Change(ChangeOp.CREATE, PEOPLE, attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": ["People"]})),
        Change(ChangeOp.CREATE, GROUPS, attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": ["Groups"]})),
    ]
    for i in range(n):
        attrs = {"objectClass": ["inetOrgPerson"], "uid": [f"u{i:04d}"], "cn": [f"First {i % 10} Last{i}"],
                 "sn": [f"Last{i}"], "title": ["Boss" if i % 7 == 0 else "Staff"]}
        if i % 3:
            attrs["mail"] = [f"user{i}@example.org"]
        changes.append(Change(ChangeOp.CREATE, f"uid=u{i:04d},{PEOPLE}", attrs=Attrs(attrs)))
    changes.append(Change(ChangeOp.CREATE, f"cn=staff,{GROUPS}", attrs=Attrs({
        "objectClass": ["groupOfNames"], "member": [f"uid=u{i:04d},{PEOPLE}" for i in range(0, n, 3)]})))
    return changes


def _open(path: Path, indexed: Sequence[str] | None = None) -> LocalDirectory:
    return LocalDirectory(path, SUFFIX, indexed_attributes=indexed)


def _results(d: LocalDirectory, flt: str, base: str = SUFFIX, scope: Scope = Scope.SUB) -> list[tuple[str, dict[str, list[str]]]]:
    return [(e.dn, e.attrs.to_dict()) for e in d.search(base, scope, flt, ["*", "entryUUID"])]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "dir.db"
    with _open(file, []) as d:
        assert all(o.error is None for o in d.apply(_people(200)))
    return file


def _index_used(caplog: pytest.LogCaptureFixture) -> bool:
    used = any("from the index" in r.getMessage() for r in caplog.records)
    caplog.clear()
    return used


def test_results_are_the_same_with_and_without_indexes(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="idsync.connectors.local.directory")
    with _open(path, []) as plain:
        expected = {(f, b, s): _results(plain, f, b, s) for f in FILTERS
                    for b, s in ((SUFFIX, Scope.SUB), (PEOPLE, Scope.ONE), (GROUPS, Scope.SUB))}
    assert not _index_used(caplog)
    assert len(expected["(uid=u0007)", SUFFIX, Scope.SUB]) == 1
    assert len(expected["(mail=*)", SUFFIX, Scope.SUB]) == 133
    assert len(expected["(name=First 1 Last11)", SUFFIX, Scope.SUB]) == 1
    with _open(path) as indexed:
        used = set()
        for (flt, base, scope), want in expected.items():
            assert _results(indexed, flt, base, scope) == want, (flt, base, scope)
            if _index_used(caplog):
                used.add(flt)
    assert {"(uid=u0007)", "(UID=U0007 )", "(cn=First 3 Last13)", "(&(objectClass=person)(uid=u0042))",
            "(|(uid=u0001)(mail=user2@example.org))", "(member=uid=U0003,ou=people,dc=example,dc=org)",
            "(objectClass=groupOfNames)", "(uid=nobody)"} <= used
    # Not narrowed: a scan is as cheap (most entries match), or a part is not indexed.
    assert not used & {"(mail=*)", "(objectClass=top)", "(|(uid=u0001)(title=Boss))", "(!(uid=u0001))"}


def test_the_lookup_is_a_range_of_the_index_key(path: Path) -> None:
    with _open(path):
        pass
    db = sqlite3.connect(path)
    try:
        plans = [" ".join(str(r[-1]) for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))
                 for sql, args in ((_IDS_EQUAL, ("uid", "u0001")), (_IDS_PRESENT, ("mail",)))]
        count = db.execute("SELECT count(*) FROM idx WHERE attr = 'uid'").fetchone()[0]
    finally:
        db.close()
    assert all("USING PRIMARY KEY" in p and "SCAN" not in p for p in plans), plans
    assert count == 200


def test_writes_keep_the_indexes_right(path: Path) -> None:
    renamed = f"uid=x0001,{PEOPLE}"
    with _open(path) as d:
        outcomes = list(d.apply([
            Change(ChangeOp.UPDATE, f"uid=u0002,{PEOPLE}", mods=(Modification(ModOp.REPLACE, "mail", ("new@example.org",)),)),
            Change(ChangeOp.MOVE, f"uid=u0001,{PEOPLE}", new_dn=renamed),
            Change(ChangeOp.DELETE, f"uid=u0004,{PEOPLE}"),
        ]))
        assert all(o.error is None for o in outcomes), outcomes
        checks = ("(mail=user2@example.org)", "(mail=new@example.org)", "(uid=u0001)", "(uid=x0001)", "(uid=u0004)",
                  "(mail=user4@example.org)")
        indexed = {f: _results(d, f) for f in checks}
    with _open(path, []) as plain:
        assert {f: _results(plain, f) for f in checks} == indexed
    assert [dn for dn, _ in indexed["(uid=x0001)"]] == [renamed]
    assert indexed["(mail=new@example.org)"] and not indexed["(mail=user2@example.org)"]
    assert not indexed["(uid=u0001)"] and not indexed["(uid=u0004)"] and not indexed["(mail=user4@example.org)"]


def test_changing_the_indexed_attributes_rebuilds_the_index(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="idsync.connectors.local.directory")
    with _open(path, ["title", "uid"]) as d:
        assert len(_results(d, "(&(title=staff)(uid=u0005))")) == 1
        assert _index_used(caplog)
        assert len(_results(d, "(cn=First 3 Last13)")) == 1
        assert not _index_used(caplog)
    db = sqlite3.connect(path)
    try:
        attrs = {r[0] for r in db.execute("SELECT DISTINCT attr FROM idx")}
        stored = json.loads(db.execute("SELECT value FROM meta WHERE name = 'indexed'").fetchone()[0])
    finally:
        db.close()
    assert attrs == {"title", "uid"} and stored == ["title", "uid"]


def test_unknown_indexed_attribute_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'noSuchAttr' is not in the directory's schema"):
        _open(tmp_path / "dir.db", ["uid", "noSuchAttr"])


def test_a_file_of_the_first_format_is_upgraded_on_open(tmp_path: Path) -> None:
    file = tmp_path / "old.db"
    db = sqlite3.connect(file)
    db.executescript("""
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE entries (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, parent TEXT NOT NULL,
            dn TEXT NOT NULL, uuid TEXT NOT NULL UNIQUE, created TEXT NOT NULL, modified TEXT NOT NULL,
            attrs TEXT NOT NULL);
        CREATE INDEX entries_parent ON entries (parent, key);
        INSERT INTO meta VALUES ('format', '1'), ('suffix', 'dc=example,dc=org');
    """)
    rows = [
        (SUFFIX, {"objectClass": ["top", "dcObject", "organization"], "dc": ["example"], "o": ["example"]}),
        (PEOPLE, {"objectClass": ["organizationalUnit"], "ou": ["People"]}),
        *((f"uid=u{i},{PEOPLE}", {"objectClass": ["inetOrgPerson"], "uid": [f"u{i}"], "cn": [f"U {i}"], "sn": ["U"]})
          for i in range(20)),
    ]
    for n, (dn, attrs) in enumerate(rows):
        key = dn_key(dn)
        parent = key[: key.rfind("\x01", 0, len(key) - 1) + 1]
        db.execute("INSERT INTO entries (key, parent, dn, uuid, created, modified, attrs) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (key, parent, dn, f"00000000-0000-0000-0000-{n:012d}", "20250101000000Z", "20250101000000Z",
                    json.dumps(attrs)))
    db.commit()
    db.close()
    with _open(file) as d:
        assert [e.dn for e in d.search(SUFFIX, Scope.SUB, "(uid=U7)")] == [f"uid=u7,{PEOPLE}"]
        assert len(list(d.search(PEOPLE, Scope.ONE, "(objectClass=person)"))) == 20
        assert "22 entries" in d.test()
    db = sqlite3.connect(file)
    try:
        assert db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()[0] == str(FORMAT)
        assert db.execute("SELECT count(*) FROM idx WHERE attr = 'uid'").fetchone()[0] == 20
    finally:
        db.close()
