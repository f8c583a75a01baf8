"""LDIF (RFC 2849): what is written, what is read, and that one reads the other back."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs
from idsync.domain.ldif_reader import LdifRecord, read_ldif
from idsync.domain.ldif_writer import WIDTH, change_record, entry_record, needs_base64, value_line
from idsync.errors import ConfigError, RecordError

SPECIAL_DN = "cn=Doe\\, John+uid=jd,ou=People,dc=example,dc=org"
BINARY = bytes(range(256)).decode("utf-8", "surrogateescape")


def read(text: str) -> list[LdifRecord | RecordError]:
    return list(read_ldif(text.splitlines(keepends=True)))


def records(text: str) -> list[LdifRecord]:
    found = read(text)
    errors = [r for r in found if isinstance(r, RecordError)]
    assert not errors, [(e.line, e.message) for e in errors]
    return [r for r in found if isinstance(r, LdifRecord)]


def unfolded(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith(" "):
            out[-1] += line[1:]
        else:
            out.append(line)
    return out


# ---------------------------------------------------------------- writing


@pytest.mark.parametrize(
    "value",
    [" leading space", ":colon first", "<less-than first", "trailing space ", "Zoë", "line\nbreak",
     "carriage\rreturn", "nul\x00", "tab\there", "escape\x1b[31m", "del\x7f", "日本語"],
)
def test_values_that_are_not_safe_strings_are_written_in_base64(value: str) -> None:
    assert needs_base64(value)
    line = value_line("description", value)
    assert line.startswith("description:: ")
    assert base64.b64decode(line.split(":: ", 1)[1]).decode() == value


@pytest.mark.parametrize("value", ["plain", "with inner spaces", "a:b", "a<b", "x=1,y=2", "#hash", "~!@$%^&*()"])
def test_safe_strings_are_written_as_they_are(value: str) -> None:
    assert not needs_base64(value)
    assert value_line("description", value) == f"description: {value}\n"


def test_an_empty_value_has_nothing_after_the_colon() -> None:
    assert value_line("description", "") == "description:\n"


def test_long_lines_are_folded_at_76_columns_and_read_back_whole() -> None:
    value = "".join(chr(ord("a") + i % 26) for i in range(500))
    text = entry_record("uid=long,dc=example,dc=org", [("description", [value]), ("jpegPhoto", [BINARY])])
    lines = text.splitlines()
    assert max(len(line) for line in lines) == WIDTH
    assert all(line.startswith(" ") for line in lines[2:8]), "continuations start with one space"
    assert f"description: {value}" in unfolded(text)
    (record,) = records(text)
    assert record.change.attrs is not None
    assert record.change.attrs["description"] == (value,)
    assert record.change.attrs["jpegPhoto"] == (BINARY,), "binary values come back as the same bytes"


def test_a_dn_with_escaped_specials_is_written_as_it_is_and_read_back() -> None:
    text = entry_record(SPECIAL_DN, [("objectClass", ["inetOrgPerson"]), ("cn", ["Doe, John"])])
    assert text.startswith(f"dn: {SPECIAL_DN}\n")
    (record,) = records(text)
    assert record.change.dn == SPECIAL_DN


def test_a_dn_that_is_not_ascii_is_written_in_base64() -> None:
    dn = "cn=Zoë Ünal,ou=Équipe,dc=example,dc=org"
    text = entry_record(dn, [("cn", ["Zoë Ünal"])])
    assert text.startswith("dn:: ")
    assert records(text)[0].change.dn == dn


def test_change_records_are_written_for_ldapmodify() -> None:
    update = Change(ChangeOp.UPDATE, "uid=a,dc=example,dc=org", mods=(
        Modification(ModOp.REPLACE, "mail", ("a@example.org",)),
        Modification(ModOp.ADD, "description", (" padded",)),
        Modification(ModOp.DELETE, "title", ()),
    ))
    assert change_record(update) == (
        "dn: uid=a,dc=example,dc=org\nchangetype: modify\n"
        "replace: mail\nmail: a@example.org\n-\n"
        "add: description\ndescription:: IHBhZGRlZA==\n-\n"
        "delete: title\n-\n\n"
    )
    move = Change(ChangeOp.MOVE, "uid=a,ou=Old,dc=example,dc=org", new_dn="uid=b,ou=New,dc=example,dc=org",
                  delete_old_rdn=False)
    assert change_record(move) == (
        "dn: uid=a,ou=Old,dc=example,dc=org\nchangetype: modrdn\nnewrdn: uid=b\ndeleteoldrdn: 0\n"
        "newsuperior: ou=New,dc=example,dc=org\n\n"
    )


def test_change_records_read_back_as_the_changes_written() -> None:
    changes = [
        Change(ChangeOp.CREATE, SPECIAL_DN, key=SPECIAL_DN,
               attrs=Attrs({"objectClass": ["inetOrgPerson"], "cn": ["Doe, John"], "description": ["Zoë "]})),
        Change(ChangeOp.UPDATE, SPECIAL_DN, key=SPECIAL_DN, mods=(
            Modification(ModOp.ADD, "mail", ("a@example.org", "b@example.org")),
            Modification(ModOp.DELETE, "description", ("Zoë ",)),
            Modification(ModOp.REPLACE, "title", ()),
        )),
        Change(ChangeOp.MOVE, SPECIAL_DN, key=SPECIAL_DN, new_dn="uid=jd,ou=Staff,dc=example,dc=org"),
        Change(ChangeOp.DELETE, "uid=jd,ou=Staff,dc=example,dc=org", key="uid=jd,ou=Staff,dc=example,dc=org"),
    ]
    text = "version: 1\n\n" + "".join(change_record(c) for c in changes)
    assert [r.change for r in records(text)] == changes


# ---------------------------------------------------------------- reading


FILE = """\
version: 1

# People, imported from the old server
#  (a comment continues on lines that start with a space)
dn: uid=jd,ou=People,
 dc=example,dc=org
objectClass: inetOrgPerson
objectclass: organizationalPerson
cn: John Doe
sn: Doe
description:: IGxlYWRpbmcgc3BhY2U=
mail: jd@exa
 mple.org

dn: ou=Old,dc=example,dc=org
changetype: delete

dn: uid=jd,ou=People,dc=example,dc=org
changetype: modify
add: mail
mail: john@example.org
-
delete: description
-
replace: title
title: Boss
title: Chief
-
delete: telephoneNumber
telephoneNumber: +1 555 0100

dn: uid=jd,ou=People,dc=example,dc=org
changetype: moddn
newrdn: uid=john
deleteoldrdn: 1
newsuperior: ou=Staff,dc=example,dc=org

dn: uid=x,dc=example,dc=org
changetype: modrdn
newrdn: cn=X Y
deleteoldrdn: 0
"""


def test_a_file_of_content_and_change_records() -> None:
    add, delete, modify, moved, renamed = records(FILE)
    assert add.changetype is None and add.line == 5
    assert add.change.op is ChangeOp.CREATE
    assert add.change.dn == "uid=jd,ou=People,dc=example,dc=org", "a folded DN is joined"
    assert add.change.attrs == Attrs({
        "objectClass": ["inetOrgPerson", "organizationalPerson"], "cn": ["John Doe"], "sn": ["Doe"],
        "description": [" leading space"], "mail": ["jd@example.org"],
    })
    assert (delete.change.op, delete.change.dn, delete.line) == (ChangeOp.DELETE, "ou=Old,dc=example,dc=org", 15)
    assert modify.change.mods == (
        Modification(ModOp.ADD, "mail", ("john@example.org",)),
        Modification(ModOp.DELETE, "description", ()),
        Modification(ModOp.REPLACE, "title", ("Boss", "Chief")),
        Modification(ModOp.DELETE, "telephoneNumber", ("+1 555 0100",)),
    ), "the '-' after the last part may be left out"
    assert moved.change.op is ChangeOp.MOVE and moved.changetype == "moddn"
    assert moved.change.new_dn == "uid=john,ou=Staff,dc=example,dc=org"
    assert moved.change.delete_old_rdn
    assert renamed.change.new_dn == "cn=X Y,dc=example,dc=org", "without newsuperior the parent stays"
    assert not renamed.change.delete_old_rdn


def test_crlf_line_ends_and_a_version_line_directly_followed_by_a_record() -> None:
    text = "version: 1\r\ndn: uid=a,dc=example,dc=org\r\nobjectClass: account\r\nuid: a\r\n"
    (record,) = records(text)
    assert record.change.attrs == Attrs({"objectClass": ["account"], "uid": ["a"]})


def test_values_by_url_are_read_only_through_the_reader_given(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0binary")
    text = f"dn: uid=a,dc=example,dc=org\nobjectClass: account\njpegPhoto:< file://{photo}\n"
    (refused,) = read(text)
    assert isinstance(refused, RecordError) and refused.line == 3 and "URL" in refused.message

    def open_url(url: str) -> bytes:
        if not url.startswith("file://"):
            raise ConfigError("only file:// URLs")
        return Path(url[len("file://"):]).read_bytes()

    (record,) = read_ldif(text.splitlines(keepends=True), open_url)
    assert isinstance(record, LdifRecord) and record.change.attrs is not None
    assert record.change.attrs["jpegPhoto"][0].encode("utf-8", "surrogateescape") == photo.read_bytes()


BAD = """\
version: 1

dn: uid=ok1,dc=example,dc=org
objectClass: account
uid: ok1

dn: uid=b64,dc=example,dc=org
objectClass: account
description:: not base64!!

dn: uid=ok2,dc=example,dc=org
objectClass: account
uid: ok2

dn: uid=kind,dc=example,dc=org
changetype: rename

uid: nodn

dn: uid=mod,dc=example,dc=org
changetype: modify
replace: mail
mail: a@example.org
title: Boss

dn: uid=rdn,dc=example,dc=org
changetype: modrdn
newrdn: uid=other

dn: cn=bad,no-equals-sign,dc=example
objectClass: account

dn: uid=ctl,dc=example,dc=org
control: 1.2.840.113556.1.4.805 true
changetype: delete

dn: uid=ok3,dc=example,dc=org
objectClass: account
uid: ok3
"""


def test_each_bad_record_is_reported_with_its_line_and_reading_goes_on() -> None:
    found = read(BAD)
    good = [r.change.dn for r in found if isinstance(r, LdifRecord)]
    assert good == ["uid=ok1,dc=example,dc=org", "uid=ok2,dc=example,dc=org", "uid=ok3,dc=example,dc=org"]
    errors = {e.line: e for e in found if isinstance(e, RecordError)}
    assert sorted(errors) == [9, 16, 18, 24, 26, 30, 34]
    assert "base64" in errors[9].message and errors[9].key == "uid=b64,dc=example,dc=org"
    assert "unknown changetype 'rename'" in errors[16].message
    assert "starts with 'dn:'" in errors[18].message
    assert "a value of title inside the 'replace: mail' part" in errors[24].message
    assert "newrdn: and deleteoldrdn:" in errors[26].message
    assert "invalid DN" in errors[30].message
    assert "controls" in errors[34].message


def test_a_line_that_is_not_utf8_spoils_only_its_record() -> None:
    lines = [b"dn: uid=a,dc=example,dc=org\n", b"cn: caf\xe9\n", b"\n",
             b"dn: uid=b,dc=example,dc=org\n", b"objectClass: account\n"]
    bad, good = read_ldif(lines)
    assert isinstance(bad, RecordError) and bad.line == 2 and "UTF-8" in bad.message
    assert isinstance(good, LdifRecord) and good.change.dn == "uid=b,dc=example,dc=org"


def test_an_unknown_version_is_refused() -> None:
    (error, record) = read("version: 2\n\ndn: uid=a,dc=example,dc=org\nobjectClass: account\n")
    assert isinstance(error, RecordError) and error.line == 1
    assert isinstance(record, LdifRecord)


def test_a_continuation_before_any_line_is_an_error() -> None:
    (error, record) = read(" stray\n\ndn: uid=a,dc=example,dc=org\nobjectClass: account\n")
    assert isinstance(error, RecordError) and error.line == 1
    assert isinstance(record, LdifRecord)


def _ldif_lines(count: int) -> Iterator[str]:
    yield "version: 1\n"
    for i in range(count):
        yield "\n"
        yield f"dn: uid=user{i},ou=People,dc=example,dc=org\n"
        yield "objectClass: inetOrgPerson\n"
        yield f"cn: User {i}\n"
        yield f"description:: {base64.b64encode(('x' * 300 + ' ').encode()).decode()}\n"


def test_a_plan_exported_as_ldif_reads_back_as_its_changes() -> None:
    import io

    from idsync.services.plan_export import write_ldif

    changes = [
        Change(ChangeOp.CREATE, "uid=zoe,ou=People,dc=example,dc=org", key="uid=zoe,ou=People,dc=example,dc=org",
               attrs=Attrs({"objectClass": ["inetOrgPerson"], "cn": ["Zoë " + "x" * 100]})),
        Change(ChangeOp.MOVE, "uid=zoe,ou=People,dc=example,dc=org", key="uid=zoe,ou=People,dc=example,dc=org",
               new_dn="uid=zoe,ou=Gone,dc=example,dc=org"),
    ]
    out = io.StringIO()
    write_ldif(changes, out)
    assert all(len(line) <= WIDTH for line in out.getvalue().splitlines())
    assert [r.change for r in records(out.getvalue())] == changes
