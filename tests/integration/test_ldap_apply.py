"""LdapDirectory writes against a real slapd: what reaches the server, and recovery."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Generator

import pytest

from benchmarks.proxy import CountingProxy
from idsync.connectors.base import Directory, factory_for
from idsync.connectors.ldap import LdapDirectory, open_ldap_directory, write_connections
from idsync.connectors.ldap_pipeline import Lineages, dn_key, split_rdn
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.definitions import LdapStore
from idsync.domain.entry import Attrs, Scope
from idsync.errors import ConfigError
from tests.servers.slapd import SlapdServer, write_count

pytestmark = pytest.mark.slapd


def root(server: SlapdServer, **options: object) -> LdapDirectory:
    return LdapDirectory(url=server.url, bind_dn=server.root_dn, bind_password=server.root_pw, **options)  # type: ignore[arg-type]


def person(dn: str, uid: str) -> Change:
    return Change(ChangeOp.CREATE, dn, key=uid, attrs=Attrs({
        "objectClass": ["inetOrgPerson"], "uid": [uid], "cn": [uid], "sn": [uid],
    }))


def test_is_a_directory() -> None:
    assert isinstance(LdapDirectory(url="ldap://127.0.0.1:1"), Directory)


def test_reads_and_empty_changes_write_nothing(slapd: SlapdServer) -> None:
    base = slapd.new_container()
    with root(slapd) as directory:
        assert all(o.error is None for o in directory.apply([person(f"uid=a,{base}", "a")]))
        before = write_count(slapd)
        list(directory.search(base))
        directory.schema()
        directory.test()
        outcomes = list(directory.apply([Change(ChangeOp.UPDATE, f"uid=a,{base}", key="a")]))
        assert list(directory.apply([])) == []
    assert [o.error for o in outcomes] == [None]
    assert write_count(slapd) == before


def test_each_change_is_one_operation_and_a_move_with_mods_two(slapd: SlapdServer) -> None:
    base = slapd.new_container()
    before = write_count(slapd)
    with root(slapd) as directory:
        changes = [person(f"uid=w{i},{base}", f"w{i}") for i in range(10)]
        changes.append(Change(ChangeOp.MOVE, f"uid=w0,{base}", key="w0", new_dn=f"uid=w00,{base}",
                              mods=(Modification(ModOp.ADD, "title", ("moved",)),)))
        changes.append(Change(ChangeOp.DELETE, f"uid=w1,{base}", key="w1"))
        assert all(o.error is None for o in directory.apply(changes))
    assert write_count(slapd) - before == 10 + 2 + 1


def test_any_window_gives_the_same_result(slapd: SlapdServer) -> None:
    """The window only bounds what is outstanding: one at a time or a few, the plan succeeds."""
    base = slapd.new_container()
    for window in (1, 7):
        with root(slapd, window=window) as directory:
            sub = f"ou=w{window},{base}"
            changes = [Change(ChangeOp.CREATE, sub, key="ou", attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": [f"w{window}"]}))]
            changes += [person(f"uid=p{i},{sub}", f"p{i}") for i in range(50)]
            assert [o.error for o in directory.apply(changes) if o.error] == []
            assert len(list(directory.search(sub, Scope.ONE))) == 50


def ou(dn: str, name: str) -> Change:
    return Change(ChangeOp.CREATE, dn, key=name, attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": [name]}))


@pytest.mark.parametrize(("connections", "window"), [(1, 1), (1, 7), (2, 3), (3, 1), (3, 16)])
def test_dependent_changes_keep_plan_order_across_connections(slapd: SlapdServer, connections: int, window: int) -> None:
    """Containers before their members, a create before its modify, children
    deleted before their parent, a move before the modify of the new DN:
    whichever connection each change goes to, every one succeeds."""
    base = slapd.new_container()
    changes: list[Change] = []
    for t in range(4):
        team = f"ou=team{t},{base}"
        changes.append(ou(team, f"team{t}"))
        changes += [person(f"uid=m{t}x{i},{team}", f"m{t}x{i}") for i in range(12)]
        changes.append(Change(ChangeOp.UPDATE, f"uid=m{t}x0,{team}", key=f"m{t}x0",
                              mods=(Modification(ModOp.REPLACE, "sn", (f"first of {t}",)),)))
    changes.append(Change(ChangeOp.MOVE, f"uid=m0x1,ou=team0,{base}", key="m0x1", new_dn=f"uid=m0x1,ou=team1,{base}",
                          mods=(Modification(ModOp.ADD, "title", ("moved",)),)))
    changes.append(Change(ChangeOp.UPDATE, f"uid=m0x1,ou=team1,{base}", key="m0x1",
                          mods=(Modification(ModOp.REPLACE, "sn", ("moved",)),)))
    changes += [Change(ChangeOp.DELETE, f"uid=m3x{i},ou=team3,{base}", key=f"m3x{i}") for i in range(12)]
    changes.append(Change(ChangeOp.DELETE, f"ou=team3,{base}", key="team3"))
    with root(slapd, connections=connections, window=window) as directory:
        outcomes = list(directory.apply(changes))
        assert [o.error for o in outcomes if o.error] == []
        assert len(outcomes) == len(changes)
        teams = {e.dn.split(",")[0] for e in directory.search(base, Scope.ONE, "(ou=*)", ["ou"])}
        moved = directory.search(f"uid=m0x1,ou=team1,{base}", Scope.BASE, "(objectClass=*)", ["sn", "title"])
        (entry,) = list(moved)
        first = next(iter(directory.search(f"uid=m2x0,ou=team2,{base}", Scope.BASE, "(objectClass=*)", ["sn"])))
    assert teams == {"ou=team0", "ou=team1", "ou=team2"}
    assert (entry.attrs["sn"], entry.attrs["title"]) == (("moved",), ("moved",))
    assert first.attrs["sn"] == ("first of 2",)


def test_failures_on_any_connection_are_the_changes_own(slapd: SlapdServer) -> None:
    """Three connections, every other add refused by the schema: each outcome
    belongs to its own change, and the good ones are all written."""
    base = slapd.new_container()
    changes = [
        person(f"uid=g{i},{base}", f"g{i}") if i % 2 else Change(
            ChangeOp.CREATE, f"uid=b{i},{base}", key=f"b{i}",
            attrs=Attrs({"objectClass": ["inetOrgPerson"], "uid": [f"b{i}"], "cn": ["x"]}),  # no sn
        )
        for i in range(60)
    ]
    with root(slapd, connections=3, window=4) as directory:
        outcomes = list(directory.apply(changes))
        written = {e.attrs["uid"][0] for e in directory.search(base, Scope.ONE, "(uid=*)", ["uid"])}
    failed = {o.change.key for o in outcomes if o.error is not None}
    assert failed == {f"b{i}" for i in range(0, 60, 2)}
    assert all(o.error.message.startswith(f"add uid={o.change.key},") for o in outcomes if o.error is not None)
    assert written == {f"g{i}" for i in range(1, 60, 2)}


def test_binary_values_read_from_a_directory_are_written_back_byte_for_byte(slapd: SlapdServer) -> None:
    """A value read as text keeps undecodable bytes as lone surrogates; adding
    it (one value or several) sends the original bytes."""
    base = slapd.new_container()
    photo = b"\xff\xd8\xff\xe0\x00\x10JFIF"
    with root(slapd) as directory:
        conn = slapd.connect()
        conn.add_s(f"uid=src,{base}", [("objectClass", [b"inetOrgPerson"]), ("uid", [b"src"]), ("cn", [b"x"]),
                                       ("sn", [b"x"]), ("jpegPhoto", [photo, photo + b"2"])])
        (read,) = list(directory.search(f"uid=src,{base}", Scope.BASE, "(objectClass=*)", ["jpegPhoto"]))
        one, two = sorted(read.attrs["jpegPhoto"])
        copies = [
            Change(ChangeOp.CREATE, f"uid=one,{base}", key="one", attrs=Attrs({
                "objectClass": ["inetOrgPerson"], "uid": ["one"], "cn": ["x"], "sn": ["x"], "jpegPhoto": [one]})),
            Change(ChangeOp.CREATE, f"uid=two,{base}", key="two", attrs=Attrs({
                "objectClass": ["inetOrgPerson"], "uid": ["two"], "cn": ["x"], "sn": ["x"], "jpegPhoto": [one, two]})),
        ]
        assert [o.error for o in directory.apply(copies)] == [None, None]
        got = {dn: sorted(attrs["jpegPhoto"]) for dn, attrs in conn.search_s(base, 1, "(uid=*)", ["jpegPhoto"])}
        conn.unbind_s()
    assert got[f"uid=one,{base}"] == [photo]
    assert got[f"uid=two,{base}"] == sorted([photo, photo + b"2"])


def test_a_server_giving_one_connection_gets_every_write_over_it(
    slapd: SlapdServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An extra write connection refused (a connection limit) is not a failure:
    the run writes over the one connection it has, and says so in the log."""
    base = slapd.new_container()
    host, port = slapd.url.removeprefix("ldap://").split(":")
    with CountingProxy(host, int(port), limit=1) as proxy:
        directory = LdapDirectory(url=f"ldap://127.0.0.1:{proxy.port}", bind_dn=slapd.root_dn,
                                  bind_password=slapd.root_pw, connections=3, timeout=5)
        with directory, caplog.at_level(logging.WARNING, logger="idsync.connectors.ldap"):
            outcomes = list(directory.apply(person(f"uid=c{i},{base}", f"c{i}") for i in range(30)))
            again = list(directory.apply([person(f"uid=d0,{base}", "d0")]))
            found = len(list(directory.search(base, Scope.ONE, "(uid=*)", ["uid"])))
    assert [o.error for o in outcomes + again if o.error] == []
    assert found == 31 and directory.connections == 1
    assert proxy.accepted == 2  # the refused one was not tried again
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "writing over 1 connection(s), not 3" in warning and slapd.root_pw not in warning


def test_lineages_name_the_entry_and_its_ancestors() -> None:
    lineages = Lineages()
    assert lineages.of("UID=A, OU=B,dc=c") == ("uid=a,ou=b,dc=c", ("ou=b,dc=c", "dc=c"))
    assert lineages.of("uid=a,ou=b,DC=C") == ("uid=a,ou=b,dc=c", ("ou=b,dc=c", "dc=c"))
    assert lineages.of("cn=x\\,y,ou=b") == ("cn=x\\,y,ou=b", ("ou=b",))
    assert lineages.of("dc=org") == ("dc=org", ())
    move = Change(ChangeOp.MOVE, "uid=a,ou=b,dc=c", new_dn="uid=a,ou=d,dc=c")
    assert lineages.of_change(move) == (
        ("uid=a,ou=b,dc=c", ("ou=b,dc=c", "dc=c")),
        ("uid=a,ou=d,dc=c", ("ou=d,dc=c", "dc=c")),
    )


def test_a_connection_count_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="connections must be at least 1"):
        LdapDirectory(url="ldap://127.0.0.1:1", connections=0)


def test_abandoning_an_apply_leaves_the_directory_usable(slapd: SlapdServer) -> None:
    base = slapd.new_container()
    with root(slapd, window=16) as directory:
        outcomes = directory.apply(person(f"uid=x{i},{base}", f"x{i}") for i in range(200))
        assert isinstance(outcomes, Generator)
        first = list(itertools.islice(outcomes, 5))
        outcomes.close()  # the consumer stops early: outstanding results must not leak

        again = list(directory.apply([person(f"uid=after,{base}", "after")]))
        assert [o.change.key for o in again] == ["after"]
        assert again[0].error is None
        uids = {e.attrs["uid"][0] for e in directory.search(base, Scope.ONE, "(uid=*)", ["uid"])}
    assert "after" in uids
    # What was reported done is there; the operations not yet reported may or
    # may not have been carried out when the connections were dropped.
    assert len(first) == 5 and [o.error for o in first] == [None] * 5
    assert {o.change.key for o in first} <= uids


@pytest.mark.parametrize("connections", [2, 3])
def test_writes_are_shared_by_every_connection(slapd: SlapdServer, connections: int) -> None:
    """Each write connection carries its share of a long plan, not just the
    first window of it (ties between equally busy connections go round)."""
    base = slapd.new_container()
    host, port = slapd.url.removeprefix("ldap://").split(":")
    with CountingProxy(host, int(port)) as proxy:
        directory = LdapDirectory(url=f"ldap://127.0.0.1:{proxy.port}", bind_dn=slapd.root_dn,
                                  bind_password=slapd.root_pw, connections=connections, window=8)
        with directory:
            list(directory.search(base, Scope.BASE, "(objectClass=*)", ["dn"]))  # binds the reading connection
            proxy.reset()
            outcomes = list(directory.apply(person(f"uid=s{i},{base}", f"s{i}") for i in range(1000)))
            shares, total = list(proxy.sent_by_connection), proxy.sent
    assert [o.error for o in outcomes if o.error] == []
    assert len(shares) == connections and sum(shares) == total
    # Every connection's share of the bytes is within a fifth of an even share.
    even = total / connections
    assert all(abs(share - even) < even / 5 for share in shares), shares


def test_server_diagnostics_are_in_record_errors(slapd: SlapdServer) -> None:
    base = slapd.new_container()
    with root(slapd) as directory:
        (outcome,) = directory.apply([Change(
            ChangeOp.CREATE, f"uid=nosn,{base}", key="nosn",
            attrs=Attrs({"objectClass": ["inetOrgPerson"], "uid": ["nosn"], "cn": ["x"]}),
        )])
    assert outcome.error is not None
    message = outcome.error.message
    assert message.startswith(f"add uid=nosn,{base} failed: Object class violation")
    assert "sn" in message and "\n" not in message
    assert outcome.error.key == "nosn"
    assert outcome.error.attribute == "sn"


def test_schema_is_read_once(slapd: SlapdServer) -> None:
    with root(slapd) as directory:
        first = directory.schema()
        assert first is not None
        assert directory.schema() is first


def test_factory_builds_from_the_definition(slapd: SlapdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_LDAP_WINDOW", "12")
    monkeypatch.setenv("IDSYNC_LDAP_PAGE_SIZE", "250")
    definition = LdapStore(
        name="corp", kind="ldap", url=slapd.url, bind_dn=slapd.root_dn, bind_password="env:CORP_PW",
        timeout=3,
    )
    directory = factory_for("ldap")(definition, {"bind_password": slapd.root_pw})
    assert isinstance(directory, LdapDirectory)
    assert (directory.window, directory.page_size, directory.timeout) == (12, 250, 3)
    assert directory.connections == write_connections(slapd.url, "auto", os.cpu_count())
    assert directory.test().startswith(slapd.url)
    directory.close()
    monkeypatch.setenv("IDSYNC_LDAP_CONNECTIONS", "3")
    three = factory_for("ldap")(definition, {"bind_password": slapd.root_pw})
    assert isinstance(three, LdapDirectory) and three.connections == 3

    explicit = open_ldap_directory(definition.model_copy(update={"page_size": 40}), {"bind_password": "x"})
    assert explicit.page_size == 40

    with pytest.raises(ConfigError, match="no bind password"):
        open_ldap_directory(definition, {})


@pytest.mark.parametrize(
    ("dn", "rdn", "parent"),
    [
        ("uid=a,ou=b,dc=c", "uid=a", "ou=b,dc=c"),
        ("cn=Smith\\, John,ou=b", "cn=Smith\\, John", "ou=b"),
        ("cn=a\\\\,ou=b", "cn=a\\\\", "ou=b"),
        ("cn=a+uid=b, ou=x", "cn=a+uid=b", "ou=x"),
        ("dc=org", "dc=org", ""),
    ],
)
def test_split_rdn(dn: str, rdn: str, parent: str) -> None:
    assert split_rdn(dn) == (rdn, parent)


def test_dn_key_ignores_case_and_spaces() -> None:
    assert dn_key("UID=A, OU=B,dc=c") == dn_key("uid=a,ou=b,DC=C") == ("uid=a", "ou=b", "dc=c")
    assert dn_key("cn=x\\,y,ou=b") == ("cn=x\\,y", "ou=b")
