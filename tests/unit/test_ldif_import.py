"""Importing LDIF into the embedded directory: counts, errors with lines, order, dry runs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.connectors.local import LocalDirectory
from idsync.domain.entry import Scope
from idsync.domain.ldif_reader import read_ldif
from idsync.errors import ConnectorError
from idsync.services.directory import write_ldif
from idsync.services.ldif_import import Importer, ImportEvent, ImportResult, dry_run

SUFFIX = "dc=example,dc=org"

PEOPLE = """\
version: 1

dn: ou=People,dc=example,dc=org
objectClass: organizationalUnit
ou: People

dn: uid=ada,ou=People,dc=example,dc=org
objectClass: inetOrgPerson
uid: ada
cn: Ada Lovelace
sn: Lovelace

dn: uid=alan,ou=People,dc=example,dc=org
changetype: add
objectClass: inetOrgPerson
uid: alan
cn: Alan Turing
sn: Turing

dn: uid=ada,ou=People,dc=example,dc=org
changetype: modify
replace: title
title: Countess
-
add: mail
mail: ada@example.org
-

dn: uid=alan,ou=People,dc=example,dc=org
changetype: modrdn
newrdn: uid=aturing
deleteoldrdn: 1

dn: uid=aturing,ou=People,dc=example,dc=org
changetype: delete
"""


@pytest.fixture
def d(tmp_path: Path) -> Iterator[LocalDirectory]:
    with LocalDirectory(tmp_path / "dir.db", SUFFIX, batch_size=2) as directory:
        yield directory


def run(directory: LocalDirectory, text: str, *, stop: bool = False) -> tuple[ImportResult, list[ImportEvent]]:
    events: list[ImportEvent] = []
    result = Importer(directory, events.append, stop_on_error=stop).run(read_ldif(text.splitlines(keepends=True)))
    return result, events


def dns(directory: LocalDirectory) -> set[str]:
    return {e.dn for e in directory.search(SUFFIX, Scope.SUB)}


def test_records_are_applied_and_counted(d: LocalDirectory) -> None:
    result, events = run(d, PEOPLE)
    assert events == []
    assert (result.added, result.modified, result.deleted, result.renamed, result.failed) == (3, 1, 1, 1, 0)
    assert result.summary() == "added 3, modified 1, deleted 1, renamed 1, failed 0"
    (ada,) = d.search(f"uid=ada,ou=People,{SUFFIX}", Scope.BASE)
    assert ada.attrs["title"] == ("Countess",) and ada.attrs["mail"] == ("ada@example.org",)
    assert dns(d) == {SUFFIX, f"ou=People,{SUFFIX}", f"uid=ada,ou=People,{SUFFIX}"}


BROKEN = """\
dn: ou=People,dc=example,dc=org
objectClass: organizationalUnit
ou: People

dn: uid=dup,ou=People,dc=example,dc=org
objectClass: account
uid: dup

dn: uid=dup,ou=People,dc=example,dc=org
objectClass: account
uid: dup

dn: uid=bad,ou=People,dc=example,dc=org
changetype: explode

dn: uid=late,ou=People,dc=example,dc=org
objectClass: account
uid: late
"""


def test_a_bad_record_is_reported_with_its_line_and_the_import_goes_on(d: LocalDirectory) -> None:
    result, events = run(d, BROKEN)
    assert (result.added, result.failed) == (3, 2)
    assert [(e.line, e.action) for e in events] == [(14, "read"), (9, "add")]
    assert "Already exists" in (events[1].error or "")
    assert events[1].text().startswith("line 9: add uid=dup,ou=People,dc=example,dc=org failed")
    assert f"uid=late,ou=People,{SUFFIX}" in dns(d)


def test_stop_on_error_stops_at_the_first_failure(d: LocalDirectory) -> None:
    text = "".join(
        f"dn: {dn}\nobjectClass: {cls}\n\n"
        for dn, cls in (
            (f"ou=People,{SUFFIX}", "organizationalUnit"), (f"uid=a,ou=People,{SUFFIX}", "account"),
            (f"uid=a,ou=People,{SUFFIX}", "account"), (f"uid=b,ou=People,{SUFFIX}", "account"),
            (f"uid=c,ou=People,{SUFFIX}", "account"),
        )
    )
    result, events = run(d, text, stop=True)
    assert result.stopped and result.failed == 1 and [e.line for e in events] == [7]
    assert f"uid=c,ou=People,{SUFFIX}" not in dns(d), "nothing is sent after the failure is known"
    assert f"uid=b,ou=People,{SUFFIX}" in dns(d), "what was sent with it (a batch of 2 here) completes"
    assert result.summary().endswith("(stopped at the first failure)")


def test_stop_on_error_stops_at_a_record_that_cannot_be_read(d: LocalDirectory) -> None:
    result, events = run(d, BROKEN.replace("uid=dup", "uid=once", 1), stop=True)
    assert result.stopped and [(e.line, e.action) for e in events] == [(14, "read")]
    assert f"uid=late,ou=People,{SUFFIX}" not in dns(d)


def test_entries_before_their_parent_are_added_once_the_parent_is(d: LocalDirectory) -> None:
    text = """\
dn: uid=deep,ou=Staff,ou=People,dc=example,dc=org
objectClass: account
uid: deep

dn: ou=Staff,ou=People,dc=example,dc=org
objectClass: organizationalUnit
ou: Staff

dn: ou=People,dc=example,dc=org
objectClass: organizationalUnit
ou: People

dn: uid=orphan,ou=Nowhere,dc=example,dc=org
objectClass: account
uid: orphan
"""
    result, events = run(d, text)
    assert (result.added, result.failed) == (3, 1)
    assert [(e.line, e.action) for e in events] == [(13, "add")]
    assert "No such object" in (events[0].error or "")
    assert f"uid=deep,ou=Staff,ou=People,{SUFFIX}" in dns(d)


def test_attributes_the_directory_maintains_are_left_out_of_adds(d: LocalDirectory) -> None:
    text = """\
dn: ou=People,dc=example,dc=org
objectClass: organizationalUnit
ou: People
entryUUID: 6f0f4f8e-2b1a-4c4e-9a57-3a1d2c3b4a5f
createTimestamp: 20200101000000Z
structuralObjectClass: organizationalUnit
"""
    result, events = run(d, text)
    assert events == [] and result.added == 1
    assert result.left_out == {"entryUUID", "createTimestamp", "structuralObjectClass"}


def test_a_dry_run_says_what_it_would_do_and_writes_nothing(d: LocalDirectory) -> None:
    events: list[ImportEvent] = []
    result = dry_run(read_ldif((PEOPLE + "\n" + BROKEN).splitlines(keepends=True)), events.append)
    assert result.dry_run and (result.added, result.modified, result.deleted, result.renamed) == (7, 1, 1, 1)
    assert result.failed == 1, "only unreadable records fail in a dry run"
    assert result.summary().startswith("dry run, nothing written: would have added 7")
    texts = [e.text() for e in events]
    assert "line 3: add ou=People,dc=example,dc=org: 2 attribute(s)" in texts
    assert "line 20: modify uid=ada,ou=People,dc=example,dc=org: replace title, add mail" in texts
    assert "line 29: rename uid=alan,ou=People,dc=example,dc=org: to uid=aturing,ou=People,dc=example,dc=org" in texts
    assert dns(d) == {SUFFIX}


def test_an_export_imported_elsewhere_is_the_same_directory(d: LocalDirectory, tmp_path: Path) -> None:
    run(d, PEOPLE)
    special = """\
dn: cn=Doe\\, John+uid=jd,ou=People,dc=example,dc=org
objectClass: inetOrgPerson
cn: Doe, John
sn:: IERvZSA=
displayName:: Wm/DqyDDnG5hbA==
jpegPhoto:: /9j/4AAQSkZJRgABAQ==
"""
    assert run(d, special)[0].added == 1
    first = io.StringIO()
    write_ldif(d.search(SUFFIX), first)
    with LocalDirectory(tmp_path / "copy.db", SUFFIX) as copy:
        result, events = run(copy, first.getvalue())
        assert events == [] and result.added == 4, "the suffix entry replaces the generated one"
        second = io.StringIO()
        write_ldif(copy.search(SUFFIX), second)
    assert second.getvalue() == first.getvalue()


def test_a_store_lost_midway_ends_the_import_saying_how_far_it_got(d: LocalDirectory) -> None:
    text = "".join(f"dn: uid=u{i},{SUFFIX}\nobjectClass: account\nuid: u{i}\n\n" for i in range(6))
    text = text.replace("objectClass: account\nuid: u1\n", "objectClass: nonsense\nuid: u1\n")

    def lose_the_store(event: ImportEvent) -> None:
        d.close()  # the store goes away while the import runs

    with pytest.raises(ConnectorError, match="is closed") as caught:
        Importer(d, lose_the_store).run(read_ldif(text.splitlines(keepends=True)))
    assert "the last record sent starts on line 13" in caught.value.message
    assert "so far added 1, modified 0, deleted 0, renamed 0, failed 1" in caught.value.message
    assert caught.value.hint == "check the entries of the records before that line, then import the rest of the file"
