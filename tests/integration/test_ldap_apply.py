"""LdapDirectory writes against a real slapd: what reaches the server, and recovery."""

from __future__ import annotations

import itertools
from collections.abc import Generator

import pytest

from idsync.connectors.base import Directory, factory_for
from idsync.connectors.ldap import LdapDirectory, open_ldap_directory
from idsync.connectors.ldap_pipeline import dn_key, split_rdn
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


def test_abandoning_an_apply_leaves_the_directory_usable(slapd: SlapdServer) -> None:
    base = slapd.new_container()
    with root(slapd, window=16) as directory:
        outcomes = directory.apply(person(f"uid=x{i},{base}", f"x{i}") for i in range(200))
        assert isinstance(outcomes, Generator)
        assert len(list(itertools.islice(outcomes, 5))) == 5
        outcomes.close()  # the consumer stops early: outstanding results must not leak

        again = list(directory.apply([person(f"uid=after,{base}", "after")]))
        assert [o.change.key for o in again] == ["after"]
        assert again[0].error is None
        uids = {e.attrs["uid"][0] for e in directory.search(base, Scope.ONE, "(uid=*)", ["uid"])}
    assert "after" in uids
    assert {"x0", "x1", "x2", "x3", "x4"} <= uids


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
    assert directory.test().startswith(slapd.url)
    directory.close()

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
