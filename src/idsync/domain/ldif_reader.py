"""Reading LDIF (RFC 2849): content records and change records, as a stream.

:func:`read_ldif` takes the lines of a file (bytes or text, as a file object
yields them) and yields, record by record, an :class:`LdifRecord` (the
record as a :class:`~idsync.domain.changes.Change`, with the line it starts
on) or a :class:`~idsync.errors.RecordError` naming the line of the first
problem in that record. A bad record never stops the reading: the reader
skips to the blank line that ends it and goes on. Only one record is held at
a time, so a file of any size is read in bounded memory.

What is read, beyond the RFC's grammar:

- a content record (no ``changetype``) is an add, as ``ldapadd`` reads it;
- content and change records may be mixed in one file (``ldapmodify -a``);
- values written as UTF-8 text (not base64) are accepted;
- the ``-`` after the last part of a modify record may be left out;
- ``modrdn`` and ``moddn`` are the same; the new DN is ``newrdn`` under
  ``newsuperior`` (or under the old parent);
- values by URL (``attr:< file:///...``) are read through *open_url* when
  the caller gives one, refused otherwise;
- ``control:`` lines are refused (controls cannot be passed on), and so is
  ``increment:`` (RFC 4525).

Base64 values are decoded as UTF-8; bytes that are not UTF-8 (a photo, a
certificate) are kept with ``surrogateescape``, as every connector does, so
they are written back unchanged.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.dn import format_dn, parse_dn_uncached
from idsync.domain.entry import Attrs
from idsync.errors import ConfigError, RecordError

UrlReader = Callable[[str], bytes]
"""The bytes at a URL of an ``attr:< URL`` line (raises ConfigError when it cannot)."""

CHANGETYPES = ("add", "delete", "modify", "modrdn", "moddn")
_MOD_OPS = {"add": ModOp.ADD, "delete": ModOp.DELETE, "replace": ModOp.REPLACE}


@dataclass(frozen=True, slots=True)
class LdifRecord:
    """One record of an LDIF file.

    ``changetype`` is None for a content record (read as an add), else the
    record's ``changetype`` as written (``modrdn`` or ``moddn`` for a rename).
    ``line`` is the line the record starts on (its ``dn:`` line).
    """

    change: Change
    line: int
    changetype: str | None = None


@dataclass(slots=True)
class _Line:
    """One logical line (continuations joined): its text and where it starts."""

    text: str
    number: int


class _Bad(Exception):
    """A problem in the record being read, at a line."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _logical_records(lines: Iterable[bytes | str]) -> Iterator[list[_Line] | _Bad]:
    """The records of *lines*, each a list of logical lines (folded lines
    joined, comments dropped); a line that is not UTF-8 spoils its record."""
    record: list[_Line] = []
    spoiled: _Bad | None = None
    in_comment = False
    number = 0
    for raw in lines:
        number += 1
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                spoiled = spoiled or _Bad("the line is not UTF-8 text (write such a value in base64, attr:: …)", number)
                text = raw.decode("utf-8", "replace")
        else:
            text = raw
        text = text.rstrip("\n")
        if text.endswith("\r"):
            text = text[:-1]
        if text.startswith(" "):
            if in_comment:
                continue
            if not record:
                spoiled = spoiled or _Bad("a continuation line (starting with a space) follows no line", number)
                continue
            record[-1].text += text[1:]
            continue
        in_comment = False
        if not text:
            if record or spoiled:
                yield spoiled or record
            record, spoiled = [], None
            continue
        if text.startswith("#"):
            in_comment = True
            continue
        record.append(_Line(text, number))
    if record or spoiled:
        yield spoiled or record


def _split(line: _Line, open_url: UrlReader | None) -> tuple[str, str]:
    """(attribute description, value) of an ``attr: value`` / ``attr:: b64`` / ``attr:< url`` line."""
    name, colon, rest = line.text.partition(":")
    name = name.strip()
    if not colon or not name or " " in name:
        raise _Bad(f"expected 'attribute: value', found {_shown(line.text)}", line.number)
    if rest.startswith(":"):
        encoded = rest[1:].strip()
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Bad(f"the base64 value of {name} is not valid base64", line.number) from exc
        return name, data.decode("utf-8", "surrogateescape")
    if rest.startswith("<"):
        url = rest[1:].strip()
        if open_url is None:
            raise _Bad(f"the value of {name} is given by URL ({url}); values by URL are not read here", line.number)
        try:
            return name, open_url(url).decode("utf-8", "surrogateescape")
        except ConfigError as exc:
            raise _Bad(f"the value of {name}: {exc.message}", line.number) from exc
    return name, rest.lstrip(" ")


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


class _RecordReader:
    """Turns the logical lines of one record into an LdifRecord."""

    def __init__(self, lines: list[_Line], open_url: UrlReader | None) -> None:
        self.lines = lines
        self.pos = 0
        self.open_url = open_url
        self.dn = ""

    def next_pair(self) -> tuple[str, str, int]:
        line = self.lines[self.pos]
        self.pos += 1
        name, value = _split(line, self.open_url)
        return name, value, line.number

    def peek_name(self) -> str | None:
        if self.pos >= len(self.lines):
            return None
        return self.lines[self.pos].text.partition(":")[0].strip().lower()

    def read(self) -> LdifRecord:
        first = self.lines[0]
        name, dn, number = self.next_pair()
        if name.lower() != "dn":
            raise _Bad(f"a record starts with 'dn:', not {_shown(first.text)}", number)
        try:
            parse_dn_uncached(dn)
        except ConfigError as exc:
            raise _Bad(exc.message, number) from exc
        self.dn = dn
        if self.peek_name() == "control":
            raise _Bad("LDAP controls (control:) are not supported in LDIF records", self.lines[self.pos].number)
        if self.peek_name() != "changetype":
            return LdifRecord(self.content(), first.number)
        _name, changetype, number = self.next_pair()
        kind = changetype.strip().lower()
        if kind not in CHANGETYPES:
            raise _Bad(f"unknown changetype {changetype!r}; one of {', '.join(CHANGETYPES)}", number)
        if kind == "add":
            change = self.content()
        elif kind == "delete":
            self.expect_end("a delete record")
            change = Change(ChangeOp.DELETE, dn, key=dn)
        elif kind == "modify":
            change = self.modify()
        else:
            change = self.rename(kind)
        return LdifRecord(change, first.number, kind)

    def expect_end(self, what: str) -> None:
        if self.pos < len(self.lines):
            extra = self.lines[self.pos]
            raise _Bad(f"{what} has nothing after its changetype; found {_shown(extra.text)}", extra.number)

    def content(self) -> Change:
        pairs: list[tuple[str, str]] = []
        while self.pos < len(self.lines):
            name, value, number = self.next_pair()
            if name.lower() in ("dn", "changetype", "control"):
                raise _Bad(f"{name}: cannot appear among the attributes of a record", number)
            pairs.append((name, value))
        if not pairs:
            raise _Bad(f"the entry {self.dn} has no attributes", self.lines[0].number)
        merged: dict[str, list[str]] = {}
        spelled: dict[str, str] = {}
        for name, value in pairs:
            low = name.lower()
            spelled.setdefault(low, name)
            merged.setdefault(low, []).append(value)
        return Change(ChangeOp.CREATE, self.dn, key=self.dn, attrs=Attrs((spelled[k], v) for k, v in merged.items()))

    def modify(self) -> Change:
        mods: list[Modification] = []
        while self.pos < len(self.lines):
            op_name, attribute, number = self.next_pair()
            op = _MOD_OPS.get(op_name.lower())
            if op is None:
                raise _Bad(f"expected add:, delete: or replace: in a modify record, found {op_name}:", number)
            attribute = attribute.strip()
            if not attribute:
                raise _Bad(f"{op_name}: names no attribute", number)
            values: list[str] = []
            while self.pos < len(self.lines) and self.lines[self.pos].text != "-":
                name, value, vnumber = self.next_pair()
                if name.lower() != attribute.lower():
                    raise _Bad(
                        f"a value of {name} inside the '{op_name}: {attribute}' part "
                        "(end each part with a line holding '-')",
                        vnumber,
                    )
                values.append(value)
            if self.pos < len(self.lines):
                self.pos += 1  # the '-'
            if op is ModOp.ADD and not values:
                raise _Bad(f"'add: {attribute}' gives no value", number)
            mods.append(Modification(op, attribute, tuple(values)))
        if not mods:
            raise _Bad("a modify record without any add:, delete: or replace: part", self.lines[0].number)
        return Change(ChangeOp.UPDATE, self.dn, key=self.dn, mods=tuple(mods))

    def rename(self, kind: str) -> Change:
        fields: dict[str, tuple[str, int]] = {}
        while self.pos < len(self.lines):
            name, value, number = self.next_pair()
            low = name.lower()
            if low not in ("newrdn", "deleteoldrdn", "newsuperior") or low in fields:
                raise _Bad(f"unexpected {name}: in a {kind} record", number)
            fields[low] = (value, number)
        if "newrdn" not in fields or "deleteoldrdn" not in fields:
            raise _Bad(f"a {kind} record needs newrdn: and deleteoldrdn:", self.lines[0].number)
        newrdn, number = fields["newrdn"]
        try:
            rdns = parse_dn_uncached(newrdn)
        except ConfigError as exc:
            raise _Bad(f"newrdn: {exc.message}", number) from exc
        if len(rdns) != 1:
            raise _Bad(f"newrdn {newrdn!r} must be one RDN", number)
        flag, number = fields["deleteoldrdn"]
        if flag.strip() not in ("0", "1"):
            raise _Bad(f"deleteoldrdn must be 0 or 1, not {flag!r}", number)
        if "newsuperior" in fields:
            superior, number = fields["newsuperior"]
            try:
                parent = parse_dn_uncached(superior)
            except ConfigError as exc:
                raise _Bad(f"newsuperior: {exc.message}", number) from exc
        else:
            parent = parse_dn_uncached(self.dn)[1:]
        new_dn = format_dn((*rdns, *parent))
        return Change(ChangeOp.MOVE, self.dn, key=self.dn, new_dn=new_dn, delete_old_rdn=flag.strip() == "1")


def read_ldif(lines: Iterable[bytes | str], open_url: UrlReader | None = None) -> Iterator[LdifRecord | RecordError]:
    """The records of an LDIF file, one at a time; a bad record is yielded as a
    RecordError (its ``line`` the line of the problem, ``key`` the record's DN
    when it was read) and reading goes on.

    A ``version: 1`` line may open the file; any other version is an error
    for that first record.
    """
    first = True
    for record in _logical_records(lines):
        if isinstance(record, _Bad):
            first = False
            yield RecordError(record.message, line=record.line)
            continue
        if first:
            first = False
            head = record[0].text
            if head.partition(":")[0].strip().lower() == "version":
                version = head.partition(":")[2].strip()
                if version != "1":
                    yield RecordError(
                        f"LDIF version {version!r} is not known (only version: 1)", line=record[0].number
                    )
                    continue
                record = record[1:]
                if not record:
                    continue
        reader = _RecordReader(record, open_url)
        try:
            yield reader.read()
        except _Bad as bad:
            yield RecordError(bad.message, key=reader.dn or None, line=bad.line)
