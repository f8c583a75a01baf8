"""The directory tools on every implementation: search with :dn: filters, LDIF
export and import, and container creation."""

from __future__ import annotations

import io

import pytest

from idsync.domain.dn import normalize_dn
from idsync.domain.entry import Attrs, Scope
from idsync.domain.ldif_reader import LdifRecord, read_ldif
from idsync.domain.ldif_writer import entry_record
from idsync.errors import ConnectorError
from idsync.services.directory import create_container, write_ldif
from idsync.services.ldif_import import Importer, ImportEvent, ImportResult
from tests.contract.conftest import Box, ou, person

PHOTO = bytes(range(256)).decode("utf-8", "surrogateescape")


def run_import(box: Box, text: str, *, stop: bool = False) -> tuple[ImportResult, list[ImportEvent]]:
    events: list[ImportEvent] = []
    result = Importer(box.directory, events.append, stop_on_error=stop).run(
        read_ldif(text.format(base=box.base).encode().splitlines(keepends=True))
    )
    return result, events


def exported(box: Box, base: str | None = None, filterstr: str = "(objectClass=*)") -> str:
    out = io.StringIO()
    write_ldif(box.directory.search(base or box.base, Scope.SUB, filterstr), out)
    return out.getvalue()


# ---------------------------------------------------------------- search


def test_dn_attribute_filters_give_the_same_entries(box: Box) -> None:
    box.apply_ok(
        ou(box.dn("ou=People"), "People"),
        ou(box.dn("ou=Staff,ou=People"), "Staff"),
        person(box.dn("uid=a,ou=Staff,ou=People"), "a"),
        person(box.dn("uid=b"), "b", ou="people"),
        person(box.dn("uid=c"), "c"),
    )
    assert box.find_rdns("(ou:dn:=people)") == {"people", "staff", "a", "b"}
    assert box.find_rdns("(ou:dn:=STAFF)") == {"staff", "a"}
    assert box.find_rdns("(&(objectClass=inetOrgPerson)(!(ou:dn:=people)))") == {"c"}
    assert box.find_rdns("(uid:dn:caseExactMatch:=a)") == {"a"}


# ---------------------------------------------------------------- export and import

TREE = """\
version: 1

dn: ou=People,{base}
objectClass: organizationalUnit
ou: People

dn: cn=Doe\\, John+uid=jd,ou=People,{base}
objectClass: inetOrgPerson
cn: Doe, John
uid: jd
sn:: IERvZSA=
displayName:: Wm/DqyDDnG5hbA==
description: a long description that is folded over several lines because it is longer than seventy-six
  columns
jpegPhoto:: {photo}

dn: uid=ada,ou=People,{base}
changetype: add
objectClass: inetOrgPerson
uid: ada
cn: Ada Lovelace
sn: Lovelace

dn: uid=ada,ou=People,{base}
changetype: modify
add: mail
mail: ada@example.org
-
replace: title
title: Countess
-

dn: uid=ada,ou=People,{base}
changetype: modrdn
newrdn: cn=Ada
deleteoldrdn: 0
newsuperior: {base}

dn: cn=Ada,{base}
changetype: modrdn
newrdn: uid=ada
deleteoldrdn: 1

dn: uid=gone,ou=People,{base}
changetype: add
objectClass: account
uid: gone

dn: uid=gone,ou=People,{base}
changetype: delete
"""


def _tree() -> str:
    import base64

    photo = base64.b64encode(PHOTO.encode("utf-8", "surrogateescape")).decode()
    return TREE.replace("{photo}", photo)


def test_an_import_applies_every_kind_of_record(box: Box) -> None:
    result, events = run_import(box, _tree())
    assert events == []
    assert (result.added, result.modified, result.deleted, result.renamed, result.failed) == (4, 1, 1, 2, 0)
    jd = box.get(box.dn("cn=Doe\\, John+uid=jd,ou=People"))
    assert jd is not None
    assert jd.attrs["sn"] == (" Doe ",) and jd.attrs["displayName"] == ("Zoë Ünal",)
    assert jd.attrs["description"] == (
        "a long description that is folded over several lines because it is longer than seventy-six columns",
    )
    assert jd.attrs["jpegPhoto"] == (PHOTO,), "binary values reach the directory as the same bytes"
    ada = box.get(box.dn("uid=ada"))
    assert ada is not None
    assert ada.attrs["cn"] == ("Ada Lovelace",), "the second rename deleted the value cn=Ada the first added"
    assert ada.attrs["uid"] == ("ada",) and ada.attrs["title"] == ("Countess",)
    assert box.get(box.dn("uid=gone,ou=People")) is None


def test_a_rename_keeping_the_old_rdn_keeps_its_value(box: Box) -> None:
    box.apply_ok(person(box.dn("uid=k"), "k", cn="Kay"))
    text = "dn: uid=k,{base}\nchangetype: modrdn\nnewrdn: cn=Kay\ndeleteoldrdn: 0\n"
    result, events = run_import(box, text)
    assert events == [] and result.renamed == 1
    kept = box.get(box.dn("cn=Kay"))
    assert kept is not None and kept.attrs["uid"] == ("k",)


def test_failures_are_reported_with_their_lines_and_the_import_goes_on(box: Box) -> None:
    box.apply_ok(person(box.dn("uid=there"), "there"))
    text = """\
dn: uid=there,{base}
objectClass: account
uid: there

dn: uid=typo,{base}
changetype: modify
replace: noSuchAttributeXyz
noSuchAttributeXyz: 1

dn: uid=new,{base}
objectClass: account
uid: new

dn: uid=broken,{base}
changetype: modrdn
newrdn: uid=other
"""
    result, events = run_import(box, text)
    assert (result.added, result.failed) == (1, 3)
    lines = {e.line: e for e in events}
    assert sorted(lines) == [1, 5, 14]
    assert "Already exists" in (lines[1].error or "")
    assert lines[5].action == "modify" and lines[5].error
    assert lines[14].action == "read"
    assert box.get(box.dn("uid=new")) is not None


def test_children_before_their_parent_are_added_after_it(box: Box) -> None:
    text = """\
dn: uid=x,ou=Inner,ou=Outer,{base}
objectClass: account
uid: x

dn: ou=Inner,ou=Outer,{base}
objectClass: organizationalUnit
ou: Inner

dn: ou=Outer,{base}
objectClass: organizationalUnit
ou: Outer
"""
    result, events = run_import(box, text)
    assert events == [] and (result.added, result.failed) == (3, 0)
    assert box.get(box.dn("uid=x,ou=Inner,ou=Outer")) is not None


def test_operational_attributes_of_an_export_are_left_out_of_the_adds(box: Box) -> None:
    text = """\
dn: ou=Copied,{base}
objectClass: organizationalUnit
ou: Copied
entryUUID: 0f9a3b1e-5c1d-4c55-8f0e-2b0c9a1d7e42
createTimestamp: 20200101000000Z
modifyTimestamp: 20200101000000Z
structuralObjectClass: organizationalUnit
"""
    result, events = run_import(box, text)
    assert events == [] and result.added == 1
    assert {n.lower() for n in result.left_out} >= {"entryuuid", "createtimestamp", "structuralobjectclass"}


def test_an_export_reads_back_as_the_entries_searched(box: Box) -> None:
    run_import(box, _tree())
    text = exported(box)
    assert text.startswith("version: 1\n")
    assert all(len(line) <= 76 for line in text.splitlines())
    read = [r for r in read_ldif(text.splitlines(keepends=True)) if isinstance(r, LdifRecord)]
    searched = list(box.directory.search(box.base, Scope.SUB))
    assert [normalize_dn(r.change.dn) for r in read] == [normalize_dn(e.dn) for e in searched]
    for record, entry in zip(read, searched, strict=True):
        assert record.change.attrs == entry.attrs


def entries_below(text: str, base: str) -> list[tuple[str, object]]:
    """(DN relative to *base*, normalised; attributes) of each record of an LDIF text."""
    suffix = "," + normalize_dn(base)
    return [
        (normalize_dn(r.change.dn).removesuffix(suffix), r.change.attrs)
        for r in read_ldif(text.splitlines(keepends=True)) if isinstance(r, LdifRecord)
    ]


def test_an_export_imported_into_an_empty_tree_gives_the_same_export(box: Box) -> None:
    run_import(box, _tree())
    box.apply_ok(ou(box.dn("ou=Copy"), "Copy"))
    original = exported(box, box.dn("ou=People"))
    copy_base = box.dn("ou=Copy")
    moved = "".join(
        entry_record(r.change.dn.replace(box.base, copy_base), (r.change.attrs or Attrs()).pairs())
        for r in read_ldif(original.splitlines(keepends=True)) if isinstance(r, LdifRecord)
    )
    result, events = run_import(box, moved)
    assert events == [] and result.failed == 0 and result.added == 2
    again = exported(box, f"ou=People,{copy_base}")
    assert entries_below(again, copy_base) == entries_below(original, box.base)


# ---------------------------------------------------------------- containers


def test_a_container_is_created_with_its_missing_parents(box: Box) -> None:
    dn = box.dn("ou=Staff,o=Acme,l=Berlin")
    assert create_container(box.directory, dn) == [box.dn("l=Berlin"), box.dn("o=Acme,l=Berlin"), dn]
    for made, cls in ((box.dn("l=Berlin"), "locality"), (box.dn("o=Acme,l=Berlin"), "organization"),
                      (dn, "organizationalUnit")):
        entry = box.get(made)
        assert entry is not None and cls in entry.attrs["objectClass"]
    assert create_container(box.directory, dn) == [], "an existing container is left as it is"


def test_a_container_named_with_special_characters(box: Box) -> None:
    dn = box.dn("ou=R\\2C D+l=Paris")
    assert create_container(box.directory, dn) == [dn]
    (entry,) = box.find("(ou=R, D)", Scope.ONE)
    assert normalize_dn(entry.dn) == normalize_dn(box.dn("ou=R\\, D+l=Paris"))
    assert entry.attrs["l"] == ("Paris",)


def test_a_container_outside_the_directory_is_refused(box: Box) -> None:
    with pytest.raises(ConnectorError, match="none of the entries above it exists"):
        create_container(box.directory, "ou=x,dc=nowhere,dc=invalid")
