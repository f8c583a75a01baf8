"""Schema of the embedded directory: the checks slapd makes, and the schema data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.connectors.local import LocalDirectory
from idsync.connectors.local.schema import (
    SCHEMA_FILE,
    load_schema,
    parse_definitions,
    parse_description,
)
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs, Scope
from idsync.errors import ConfigError

SUFFIX = "dc=example,dc=org"
PERSON = ["top", "person", "organizationalPerson", "inetOrgPerson"]


@pytest.fixture
def d(tmp_path: Path) -> Iterator[LocalDirectory]:
    with LocalDirectory(tmp_path / "dir.db", SUFFIX) as directory:
        yield directory


def add(d: LocalDirectory, rdn: str, **attrs: list[str] | str) -> str | None:
    (outcome,) = d.apply([Change(ChangeOp.CREATE, f"{rdn},{SUFFIX}", key=rdn, attrs=Attrs(attrs))])
    if outcome.error is not None:
        assert outcome.error.key == rdn
        assert f"{rdn},{SUFFIX}" in outcome.error.message
        return outcome.error.message
    return None


def modify(d: LocalDirectory, rdn: str, *mods: tuple[ModOp, str, tuple[str, ...]]) -> str | None:
    change = Change(ChangeOp.UPDATE, f"{rdn},{SUFFIX}", key=rdn, mods=tuple(Modification(*m) for m in mods))
    (outcome,) = d.apply([change])
    return outcome.error.message if outcome.error else None


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"objectClass": PERSON, "cn": "a", "sn": "b", "foo": "x"},
         "Undefined attribute type: foo: attribute type undefined"),
        ({"objectClass": PERSON, "cn": "a"},
         "Object class violation: object class 'person' requires attribute 'sn'"),
        ({"objectClass": ["person"], "cn": "a", "sn": "b", "mail": "a@b"},
         "Object class violation: attribute 'mail' not allowed"),
        ({"objectClass": PERSON, "cn": "a", "sn": "b", "displayName": ["x", "y"]},
         "Constraint violation: displayName: multiple values provided"),
        ({"objectClass": [*PERSON, "fooClass"], "cn": "a", "sn": "b"},
         "object class 'fooClass' is not in the schema"),
        ({"objectClass": ["top"], "cn": "a"}, "no structural object class provided"),
        ({"objectClass": ["person", "organizationalUnit"], "cn": "a", "sn": "b", "ou": "c"},
         "invalid structural object class chain (organizationalUnit/person)"),
        ({"cn": "a", "sn": "b"}, "no objectClass attribute"),
        ({"objectClass": PERSON, "cn": "", "sn": "b"}, "Invalid syntax: cn: value #0 invalid per syntax"),
        ({"objectClass": PERSON, "cn": "a", "sn": "b", "mail": "jö@example.org"}, "mail: value #0 invalid"),
        ({"objectClass": PERSON, "cn": "a", "sn": "b", "telephoneNumber": "555#1"}, "telephoneNumber: value #0"),
        ({"objectClass": PERSON, "cn": "a", "sn": "b", "manager": "not a dn"}, "manager: value #0"),
        ({"objectClass": [*PERSON, "posixAccount"], "cn": "a", "sn": "b", "uidNumber": "007", "gidNumber": "1",
          "homeDirectory": "/h"}, "uidNumber: value #0 invalid per syntax"),
        ({"objectClass": PERSON, "cn": "a", "sn": "b", "cn;lang-de": "x"}, "attribute options are not supported"),
    ],
)
def test_schema_violations_are_record_errors(d: LocalDirectory, attrs: dict[str, list[str] | str],
                                             expected: str) -> None:
    message = add(d, "uid=a", **attrs)
    assert message is not None and expected in message, message
    assert message.startswith("add uid=a,dc=example,dc=org failed: ")


def test_schema_error_names_the_attribute(d: LocalDirectory) -> None:
    (outcome,) = d.apply([Change(ChangeOp.CREATE, f"uid=a,{SUFFIX}", key="a",
                                 attrs=Attrs({"objectClass": PERSON, "cn": "a"}))])
    assert outcome.error is not None and outcome.error.attribute == "sn"


def test_valid_entries_pass(d: LocalDirectory) -> None:
    assert add(d, "uid=ok", objectClass=PERSON, cn="a", sn="b", mail="a@example.org",
               telephoneNumber="+1 (555) 0100", manager=f"uid=boss,{SUFFIX}", displayName="A") is None
    assert add(d, "uid=px", objectClass=[*PERSON, "posixAccount"], cn="p", sn="x", uidNumber="-5",
               gidNumber="0", homeDirectory="/home/px") is None
    assert add(d, "cn=g", objectClass=["groupOfNames"], member=[f"uid=ok,{SUFFIX}", f"uid=px,{SUFFIX}"]) is None


def test_extensible_object_allows_any_defined_attribute(d: LocalDirectory) -> None:
    assert add(d, "uid=ext", objectClass=[*PERSON, "extensibleObject"], cn="a", sn="b", homeDirectory="/h") is None
    assert add(d, "uid=ext2", objectClass=[*PERSON, "extensibleObject"], cn="a", sn="b", foo="x") is not None


def test_modify_is_checked_against_the_schema(d: LocalDirectory) -> None:
    assert add(d, "uid=m", objectClass=PERSON, cn="a", sn="b") is None
    message = modify(d, "uid=m", (ModOp.DELETE, "sn", ()))
    assert message is not None and "requires attribute 'sn'" in message
    message = modify(d, "uid=m", (ModOp.ADD, "displayName", ("x", "y")))
    assert message is not None and "multiple values" in message
    message = modify(d, "uid=m", (ModOp.ADD, "homeDirectory", ("/h",)))
    assert message is not None and "'homeDirectory' not allowed" in message
    message = modify(d, "uid=m", (ModOp.ADD, "objectClass", ("posixAccount",)))
    assert message is not None and "object class 'posixAccount' requires attribute" in message
    assert modify(d, "uid=m", (ModOp.ADD, "objectClass", ("posixAccount",)),
                  (ModOp.ADD, "uidNumber", ("10",)), (ModOp.ADD, "gidNumber", ("10",)),
                  (ModOp.ADD, "homeDirectory", ("/h",))) is None


def test_structural_class_cannot_change(d: LocalDirectory) -> None:
    assert add(d, "uid=s", objectClass=PERSON, cn="a", sn="b", uid="s") is None
    message = modify(d, "uid=s", (ModOp.REPLACE, "objectClass", ("top", "person", "organizationalPerson")))
    assert message is not None
    assert "Cannot modify object class: structural object class modification from 'inetOrgPerson' to " \
           "'organizationalPerson' not allowed" in message


def test_schema_method_returns_the_directory_schema(d: LocalDirectory) -> None:
    schema = d.schema()
    cn = schema.attribute("COMMONNAME")
    assert cn is not None and cn.name == "cn"
    assert schema.required_attributes(["inetOrgPerson"]) == {"cn", "sn", "objectclass"}
    assert "uid" in schema.allowed_attributes(["inetOrgPerson"])
    assert schema.object_class("posixAccount") is not None
    entry_uuid = schema.attribute("entryUUID")
    assert entry_uuid is not None and entry_uuid.no_user_modification and entry_uuid.single_value


def test_parse_schema_file_text(tmp_path: Path) -> None:
    text = """
# a comment
attributetype ( 1.1.1 NAME ( 'fooName' 'fooAlias' )
\tDESC 'a test'
\tSUP name SINGLE-VALUE )

objectclass ( 1.1.2 NAME 'fooPerson' SUP inetOrgPerson
    AUXILIARY MUST fooName MAY ( description $ fooAlias ) X-ORIGIN 'test' )
"""
    path = tmp_path / "foo.schema"
    path.write_text(text)
    data = parse_definitions([path])
    assert data["attribute_types"] == [
        {"oid": "1.1.1", "names": ["fooName", "fooAlias"], "sup": "name", "single_value": True}
    ]
    assert data["object_classes"] == [
        {"oid": "1.1.2", "names": ["fooPerson"], "sup": ["inetOrgPerson"], "kind": "auxiliary",
         "must": ["fooName"], "may": ["description", "fooAlias"]}
    ]
    schema = load_schema((path,))
    foo = schema.attribute("FOOALIAS")
    assert foo is not None and foo.equality == "caseIgnoreMatch", "inherited from name"
    assert "fooname" in schema.subtypes("name")


def test_extra_schema_files_extend_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "foo.ldif"
    path.write_text(
        "dn: cn=foo,cn=schema,cn=config\n"
        "olcAttributeTypes: {0}( 1.1.1 NAME 'fooName' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.1\n"
        " 15.121.1.15 )\n"
        "olcObjectClasses: {0}( 1.1.2 NAME 'fooObject' SUP top AUXILIARY MAY fooName )\n"
    )
    with LocalDirectory(tmp_path / "dir.db", SUFFIX, schema_files=[path]) as d:
        assert add(d, "uid=f", objectClass=[*PERSON, "fooObject"], cn="a", sn="b", fooName="x") is None
        (entry,) = d.search(SUFFIX, Scope.SUB, "(fooname=X)")
        assert entry.attrs["fooName"] == ("x",)


def test_parse_description_rejects_garbage() -> None:
    with pytest.raises(ConfigError, match="unknown keyword"):
        parse_description("attributetype", "( 1.1 NAME 'x' BOGUS )")
    with pytest.raises(ConfigError, match="not a parenthesized"):
        parse_description("objectclass", "1.1 NAME 'x'")


OPENLDAP = Path("/etc/ldap/schema")


@pytest.mark.skipif(not (OPENLDAP / "core.schema").exists(), reason="OpenLDAP schema files not installed")
def test_builtin_schema_holds_the_openldap_files() -> None:
    files = parse_definitions(OPENLDAP / f"{n}.schema" for n in ("core", "cosine", "inetorgperson", "nis"))
    data = json.loads(SCHEMA_FILE.read_text())
    for key in ("attribute_types", "object_classes"):
        stored = {item["oid"]: item for item in data[key]}
        for item in files[key]:
            assert stored[item["oid"]] == item, item["names"]
    system = {n for item in data["attribute_types"] for n in item["names"]}
    assert {"objectClass", "cn", "uid", "entryUUID", "createTimestamp", "modifyTimestamp"} <= system
