"""The embedded directory mirrors a server: its suffix entry as given or imported,
binary values, renames that keep the old RDN, and ``:dn:`` filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from idsync.connectors.local import LocalDirectory, open_local_directory
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.definitions import LocalStore
from idsync.domain.entry import Attrs, Entry, Scope
from idsync.errors import ConfigError

SUFFIX = "dc=example,dc=org"
GIVEN = {"objectClass": ["top", "dcObject", "organization"], "o": ["Example Inc."], "description": ["The root"]}


def get(d: LocalDirectory, dn: str, attributes: list[str] | None = None) -> Entry:
    (entry,) = d.search(dn, Scope.BASE, "(objectClass=*)", attributes)
    return entry


def add(dn: str, **attrs: list[str]) -> Change:
    return Change(ChangeOp.CREATE, dn, key=dn, attrs=Attrs(attrs))


def apply_one(d: LocalDirectory, change: Change) -> str | None:
    (outcome,) = d.apply([change])
    return outcome.error.message if outcome.error else None


def test_the_suffix_entry_can_be_given(tmp_path: Path) -> None:
    with LocalDirectory(tmp_path / "dir.db", SUFFIX, suffix_attributes=GIVEN) as d:
        attrs = get(d, SUFFIX).attrs
        assert attrs == Attrs({**GIVEN, "dc": ["example"]}), "the RDN value is added, as on any add"


def test_given_suffix_attributes_reach_the_directory_through_the_store_definition(tmp_path: Path) -> None:
    definition = LocalStore.model_validate({
        "name": "mirror", "kind": "local", "path": str(tmp_path / "dir.db"),
        "suffix_attributes": {"objectClass": ["dcObject", "organization"], "o": "Example"},
    })
    assert definition.suffix_attributes == {"objectClass": ["dcObject", "organization"], "o": ["Example"]}
    with open_local_directory(definition, {}) as d:
        assert get(d, SUFFIX).attrs["o"] == ("Example",)


def test_suffix_attributes_need_object_classes() -> None:
    with pytest.raises(ValueError, match="needs objectClass"):
        LocalStore.model_validate({"name": "x", "kind": "local", "path": "x.db", "suffix_attributes": {"o": "X"}})


def test_suffix_attributes_the_directory_refuses_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="requires attribute 'o'") as info:
        LocalDirectory(tmp_path / "dir.db", SUFFIX, suffix_attributes={"objectClass": ["organization"]})
    assert info.value.field == "suffix_attributes"


def test_changed_suffix_attributes_apply_on_the_next_open(tmp_path: Path) -> None:
    LocalDirectory(tmp_path / "dir.db", SUFFIX).close()  # generated first
    with LocalDirectory(tmp_path / "dir.db", SUFFIX, suffix_attributes=GIVEN) as d:
        assert get(d, SUFFIX).attrs["o"] == ("Example Inc.",)
    changed = {**GIVEN, "o": ["Example GmbH"]}
    with LocalDirectory(tmp_path / "dir.db", SUFFIX, suffix_attributes=changed) as d:
        assert get(d, SUFFIX).attrs["o"] == ("Example GmbH",)


def test_a_suffix_entry_changed_in_the_directory_is_kept(tmp_path: Path) -> None:
    with LocalDirectory(tmp_path / "dir.db", SUFFIX) as d:
        change = Change(ChangeOp.UPDATE, SUFFIX, mods=(Modification(ModOp.REPLACE, "o", ("Edited",)),))
        assert apply_one(d, change) is None
    with LocalDirectory(tmp_path / "dir.db", SUFFIX, suffix_attributes=GIVEN) as d:
        assert get(d, SUFFIX).attrs["o"] == ("Edited",)


def test_adding_the_suffix_entry_replaces_the_generated_one(tmp_path: Path) -> None:
    with LocalDirectory(tmp_path / "dir.db", SUFFIX) as d:
        ou = add(f"ou=People,{SUFFIX}", objectClass=["organizationalUnit"], ou=["People"])
        assert apply_one(d, ou) is None
        before = get(d, SUFFIX, ["entryUUID"]).attrs["entryUUID"]
        imported = add("DC=Example,DC=Org", objectClass=["top", "domain"], dc=["Example"], description=["imported"])
        assert apply_one(d, imported) is None
        entry = get(d, SUFFIX, ["*", "entryUUID"])
        assert entry.dn == "DC=Example,DC=Org", "spelled as imported"
        assert entry.attrs["objectClass"] == ("top", "domain")
        assert entry.attrs["description"] == ("imported",)
        assert entry.attrs["entryUUID"] != before
        assert [e.dn for e in d.search(SUFFIX, Scope.ONE)] == [f"ou=People,{SUFFIX}"], "its children stay"
        assert "Already exists" in (apply_one(d, imported) or ""), "only the generated entry is replaced"
    with LocalDirectory(tmp_path / "dir.db", SUFFIX) as d:
        assert d.suffix == "DC=Example,DC=Org"
        assert get(d, SUFFIX).attrs["description"] == ("imported",)


def test_a_given_suffix_entry_is_not_replaced_by_an_add(tmp_path: Path) -> None:
    with LocalDirectory(tmp_path / "dir.db", SUFFIX, suffix_attributes=GIVEN) as d:
        error = apply_one(d, add(SUFFIX, objectClass=["domain"], dc=["example"]))
        assert error is not None and "Already exists" in error


def test_binary_values_are_stored_and_read_back_as_the_same_bytes(tmp_path: Path) -> None:
    photo = bytes(range(256))
    value = photo.decode("utf-8", "surrogateescape")
    with LocalDirectory(tmp_path / "dir.db", SUFFIX) as d:
        person = add(f"uid=a,{SUFFIX}", objectClass=["inetOrgPerson"], uid=["a"], cn=["A"], sn=["A"],
                     jpegPhoto=[value], displayName=["Zoë"])
        assert apply_one(d, person) is None
    with LocalDirectory(tmp_path / "dir.db", SUFFIX) as d:
        attrs = get(d, f"uid=a,{SUFFIX}").attrs
        assert attrs["jpegPhoto"][0].encode("utf-8", "surrogateescape") == photo
        assert attrs["displayName"] == ("Zoë",)


def test_a_rename_may_keep_the_old_rdn_values(tmp_path: Path) -> None:
    with LocalDirectory(tmp_path / "dir.db", SUFFIX) as d:
        person = add(f"uid=a,{SUFFIX}", objectClass=["inetOrgPerson"], uid=["a"], cn=["Ada"], sn=["L"])
        assert apply_one(d, person) is None
        keep = Change(ChangeOp.MOVE, f"uid=a,{SUFFIX}", new_dn=f"cn=Ada L,{SUFFIX}", delete_old_rdn=False)
        assert apply_one(d, keep) is None
        attrs = get(d, f"cn=Ada L,{SUFFIX}").attrs
        assert set(attrs["cn"]) == {"Ada", "Ada L"} and attrs["uid"] == ("a",)
        drop = Change(ChangeOp.MOVE, f"cn=Ada L,{SUFFIX}", new_dn=f"uid=a,{SUFFIX}")
        assert apply_one(d, drop) is None
        assert get(d, f"uid=a,{SUFFIX}").attrs["cn"] == ("Ada",)


def test_dn_attribute_filters_match_below_a_container(tmp_path: Path) -> None:
    with LocalDirectory(tmp_path / "dir.db", SUFFIX) as d:
        for change in (
            add(f"ou=People,{SUFFIX}", objectClass=["organizationalUnit"], ou=["People"]),
            add(f"ou=Staff,ou=People,{SUFFIX}", objectClass=["organizationalUnit"], ou=["Staff"]),
            add(f"uid=a,ou=Staff,ou=People,{SUFFIX}", objectClass=["account"], uid=["a"]),
            add(f"uid=b,{SUFFIX}", objectClass=["account"], uid=["b"], ou=["people"]),
        ):
            assert apply_one(d, change) is None
        found = {e.dn for e in d.search(SUFFIX, Scope.SUB, "(ou:dn:=people)")}
        assert found == {f"ou=People,{SUFFIX}", f"ou=Staff,ou=People,{SUFFIX}", f"uid=a,ou=Staff,ou=People,{SUFFIX}",
                         f"uid=b,{SUFFIX}"}
        assert {e.dn for e in d.search(SUFFIX, Scope.SUB, "(&(uid=*)(ou:dn:=staff))")} == {
            f"uid=a,ou=Staff,ou=People,{SUFFIX}"
        }
