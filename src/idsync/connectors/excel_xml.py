"""The XML inside an .xlsx workbook, read in memory bounded by settings.

An .xlsx file is a zip archive of XML parts, and both layers can be made to
take memory without bound: a part of a megabyte can decompress to gigabytes
(a zip bomb), and an XML parser building a tree holds each text whole (one
cell of 1.5 GiB takes gigabytes as an ElementTree). The bounds:

- The archive's directory records each part's decompressed size, and
  :mod:`zipfile` never yields more than that. :func:`check_sizes` refuses a
  worksheet larger than IDSYNC_EXCEL_SHEET_LIMIT, or any other part larger
  than IDSYNC_EXCEL_PART_LIMIT (other parts are read whole, or, for the
  shared strings, kept), before anything is parsed.
- The sheet and the shared strings are fed to expat 64 KiB at a time. The
  sheet becomes one small tree per row (:func:`sheet_rows`); the shared
  strings, one text at a time (:func:`read_shared_strings`). A text past
  IDSYNC_EXCEL_CELL_LIMIT characters is counted and dropped as it arrives,
  and stands as :class:`TooLong`; a row holding more than twice that, or
  more XML elements than :data:`MAX_ROW_ELEMENTS`, is dropped as it arrives
  too. Either is a :class:`BadRow`, which the reader turns into a record
  error naming the row, and reading goes on.
- Input that gives the parser nothing for a megabyte (a tag, comment or
  attribute that long) or elements nested deeper than :data:`MAX_DEPTH` are
  refused: expat would keep buffering them. Names are not interned (as
  ElementTree's parser does, for the life of the parser), so a part of
  made-up tag names cannot fill a cache either.

The shared strings are kept in one buffer (:class:`SharedStrings`), so the
table takes about the size of its text rather than an object per string.
"""

from __future__ import annotations

import re
import zipfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

from idsync.errors import ConnectorError

ROW_FACTOR = 2
"""A row may hold at most this many times the cell limit, all its cells together."""
MAX_ROW_ELEMENTS = 1 << 17
"""XML elements a row may have: eight for each of Excel's 16,384 columns."""
MAX_DEPTH = 256
"""How deep elements may nest; spreadsheet programs write fewer than 20 levels."""
_CHUNK = 1 << 14
_PIECE = 1 << 12
_QUIET = 1 << 20
"""Bytes the parser may take without an event (one tag, comment or attribute)."""
_WORKSHEET = re.compile(r"(?:^|/)worksheets/[^/]+\.xml$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TooLong:
    """A text longer than the cell limit, standing for it: its length in characters."""

    length: int


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that is not read: its first cell over the cell limit (*column*,
    1-based, and the *length* of its text), or a *problem* with the whole row."""

    column: int = 0
    length: int = 0
    problem: str = ""


# ---------------------------------------------------------------- the archive


def check_sizes(archive: zipfile.ZipFile, where: str, *, sheet_limit: int, part_limit: int) -> None:
    """Refuse a workbook with a part decompressing past its limit, from the
    sizes the archive records (zipfile stops reading a part at its size)."""
    for info in archive.infolist():
        sheet = bool(_WORKSHEET.search(info.filename))
        limit, setting = (sheet_limit, "IDSYNC_EXCEL_SHEET_LIMIT") if sheet else (part_limit, "IDSYNC_EXCEL_PART_LIMIT")
        if info.file_size > limit:
            raise ConnectorError(
                f"{where}: its part {info.filename} decompresses to {info.file_size:,} bytes, "
                f"more than the {limit:,} allowed ({setting}); the file is damaged, or made to exhaust memory",
                hint=f"if the workbook is genuine, raise {setting}",
            )


# ---------------------------------------------------------------- feeding expat


class _Target:
    """What every parser target here counts: events, and how deep elements nest."""

    def __init__(self) -> None:
        self.events = 0
        self.finished = False
        self._level = 0

    def _open(self) -> None:
        self.events += 1
        self._level += 1
        if self._level > MAX_DEPTH:
            raise ValueError(f"XML elements nested more than {MAX_DEPTH} deep")

    def start(self, name: str, attrs: dict[str, str]) -> None:
        raise NotImplementedError

    def data(self, text: str) -> None:
        raise NotImplementedError

    def end(self, name: str) -> None:
        raise NotImplementedError


def _feed(source: IO[bytes], target: _Target) -> Iterator[None]:
    """Feed *source* to a parser with *target*, yielding after each piece of
    :data:`_PIECE` bytes (so what the target collects between two yields
    stays small), until the end or until *target* is finished."""
    # Names come as "namespace}local"; external entities are never read.
    parser = expat.ParserCreate(namespace_separator="}", intern=None)
    parser.StartElementHandler = target.start
    parser.EndElementHandler = target.end
    parser.CharacterDataHandler = target.data
    quiet = 0
    while not target.finished:
        chunk = source.read(_CHUNK)
        if not chunk:
            parser.Parse(b"", True)
            yield
            return
        for offset in range(0, len(chunk), _PIECE):
            seen = target.events
            piece = chunk[offset : offset + _PIECE]
            try:
                parser.Parse(piece, False)
            except Exception:
                yield  # what was read before the problem is taken first
                raise
            quiet = quiet + len(piece) if target.events == seen else 0
            if quiet > _QUIET:
                raise ValueError(f"an XML tag, comment or attribute is longer than {_QUIET:,} bytes")
            yield
            if target.finished:
                return


# ---------------------------------------------------------------- shared strings


class SharedStrings:
    """The workbook's shared-string table, its texts encoded in one buffer.

    Indexed like the list openpyxl keeps (an index past the end raises
    IndexError); a text over the cell limit is a :class:`TooLong`."""

    def __init__(self) -> None:
        self._text = bytearray()
        self._ends = array("Q")
        self._too_long: dict[int, TooLong] = {}

    @property
    def has_too_long(self) -> bool:
        return bool(self._too_long)

    def append(self, text: str) -> None:
        self._text += text.encode("utf-8")
        self._ends.append(len(self._text))

    def append_too_long(self, length: int) -> None:
        self._too_long[len(self._ends)] = TooLong(length)
        self._ends.append(len(self._text))

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> str | TooLong:
        if index < 0:
            index += len(self._ends)
        end = self._ends[index]
        if self._too_long and index in self._too_long:
            return self._too_long[index]
        return self._text[self._ends[index - 1] if index else 0 : end].decode("utf-8")


class _StringTarget(_Target):
    """Collects each ``<si>``'s text as openpyxl does (the text of its ``<t>``,
    then of each rich-text run's ``<t>``; phonetic runs left out), building no tree."""

    def __init__(self, table: SharedStrings, limit: int) -> None:
        super().__init__()
        self.table = table
        self.limit = limit
        self._path: list[str] = []  # local names of the elements open inside the current <si>
        self._inside = False
        self._length = 0
        self._plain: str | None = None
        self._runs: list[str] = []
        self._run: str | None = None
        self._chunks: list[str] | None = None  # the text of the <t> being read
        self._at = 0  # how deep that <t> is

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self._open()
        name = name.rpartition("}")[2]
        if not self._inside:
            if name == "si":
                self._inside, self._length, self._plain, self._runs = True, 0, None, []
            return
        path = self._path
        path.append(name)
        if name == "t" and (len(path) == 1 or (len(path) == 2 and path[0] == "r")):
            self._chunks, self._at = [], len(path)
        elif name == "r" and len(path) == 1:
            self._run = None

    def data(self, text: str) -> None:
        self.events += 1
        if self._chunks is None or len(self._path) != self._at:
            return  # not the text of a <t> (text after an element inside it is not, either)
        self._length += len(text)
        if self._length <= self.limit:
            self._chunks.append(text)

    def end(self, name: str) -> None:
        self.events += 1
        self._level -= 1
        if not self._inside:
            return
        path = self._path
        if not path:
            self._inside = False
            if self._length > self.limit:
                self.table.append_too_long(self._length)
            else:
                parts = [self._plain] if self._plain is not None else []
                self.table.append("".join(parts + self._runs).replace("x005F_", ""))
            return
        name = path.pop()
        if self._chunks is not None and len(path) + 1 == self._at:
            text = "".join(self._chunks) if self._chunks else None  # an empty <t/> has no text
            if path:
                self._run = text
            else:
                self._plain = text
            self._chunks = None
        elif name == "r" and not path and self._run is not None:
            self._runs.append(self._run)


def read_shared_strings(source: IO[bytes], limit: int) -> SharedStrings:
    """The shared-string table of a workbook, texts over *limit* characters as TooLong."""
    table = SharedStrings()
    for _ in _feed(source, _StringTarget(table, limit)):
        pass
    return table


# ---------------------------------------------------------------- sheet rows


class _RowTarget(_Target):
    """Builds each ``<row>`` as a small tree (texts over the limit dropped as
    they arrive) and ignores everything else; ``ready`` holds the rows built
    since it was emptied: (``r`` attribute, tree or None, cells over the
    limit as (position, length), problem)."""

    def __init__(self, namespace: str, limit: int) -> None:
        super().__init__()
        self.row_name, self.data_name = f"{namespace}}}row", f"{namespace}}}sheetData"
        self.limit = limit
        self.row_limit = ROW_FACTOR * limit
        self._too_much = f"its cells hold more than {self.row_limit:,} characters in all (twice IDSYNC_EXCEL_CELL_LIMIT)"
        self.ready: list[tuple[str | None, Element | None, list[tuple[int, int]], str]] = []
        self._builder: TreeBuilder | None = None
        self._depth = 0  # inside the row: 1 for the row element itself
        self._given: str | None = None
        self._problem = ""
        self._elements = self._size = self._cells = self._text = 0
        self._too_long: list[tuple[int, int]] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self._open()
        if not self._depth:
            if name == self.row_name:
                self._begin_row(name, attrs)
            return
        self._depth += 1
        builder = self._builder
        if builder is None:
            return
        self._elements += 1
        self._size += sum(map(len, attrs)) + sum(map(len, attrs.values()))
        if self._elements > MAX_ROW_ELEMENTS:
            self._drop(f"it has more than {MAX_ROW_ELEMENTS:,} XML elements (a full row of 16,384 cells needs far fewer)")
        elif self._size > self.row_limit:
            self._drop(self._too_much)
        else:
            if self._depth == 2:
                self._cells += 1
                self._text = 0
            builder.start(_tag(name), attrs)

    def data(self, text: str) -> None:
        self.events += 1
        if self._depth < 2 or self._builder is None:
            return  # outside rows, between cells, or in a row being dropped
        self._text += len(text)
        if self._text > self.limit:
            return  # counted for the message, not kept
        self._size += len(text)
        if self._size > self.row_limit:
            self._drop(self._too_much)
        else:
            self._builder.data(text)

    def end(self, name: str) -> None:
        self.events += 1
        self._level -= 1
        if not self._depth:
            if name == self.data_name:
                self.finished = True
            return
        self._depth -= 1
        builder = self._builder
        if builder is None:
            if not self._depth:
                self.ready.append((self._given, None, [], self._problem))
            return
        element = builder.end(_tag(name))
        if self._depth == 1 and self._text > self.limit:
            self._too_long.append((self._cells - 1, self._text))
        elif not self._depth:
            self.ready.append((self._given, element, self._too_long, ""))
            self._builder = None

    def _begin_row(self, name: str, attrs: dict[str, str]) -> None:
        self._builder = TreeBuilder()
        self._builder.start(_tag(name), attrs)
        self._depth = 1
        self._given = attrs.get("r")
        self._elements = self._cells = self._text = 0
        self._size = sum(map(len, attrs)) + sum(map(len, attrs.values()))
        self._too_long = []

    def _drop(self, problem: str) -> None:
        self._builder = None
        self._problem = problem


def _tag(name: str) -> str:
    """An expat name ("namespace}local") as ElementTree writes tags ("{namespace}local")."""
    return "{" + name if "}" in name else name


def row_number(text: str) -> int:
    """A row's ``r`` attribute as a number (some programs write ``3.0``)."""
    try:
        return int(text)
    except ValueError:
        number = float(text)
        if not number.is_integer() or number < 1:
            raise ValueError(f"{text!r} is not a row number") from None
        return int(number)


def sheet_rows(
    source: IO[bytes], parser: Any, namespace: str, start: int, limit: int
) -> Iterator[tuple[int, list[Any] | BadRow]]:
    """The rows of a sheet part from row *start* on: (row number, cell values
    by column, ``None`` where no cell), or (row number, :class:`BadRow`).

    *parser* is openpyxl's sheet parser: its ``parse_cell`` gives each cell's
    column and typed value (numbers, dates, shared strings, inline text)."""
    target = _RowTarget(namespace, limit)
    parse_cell = parser.parse_cell
    strings = parser.shared_strings
    markers = isinstance(strings, SharedStrings) and strings.has_too_long
    number = 0
    for _ in _feed(source, target):
        if not target.ready:
            continue
        ready, target.ready = target.ready, []
        for given, element, too_long, problem in ready:
            number = row_number(given) if given else number + 1
            if number < start:
                continue
            if element is None:
                yield number, BadRow(problem=problem)
                continue
            for position, _length in too_long:
                cell = element[position]
                for child in list(cell):
                    cell.remove(child)  # the value is not read: only the cell's column
            parser.row_counter, parser.col_counter = number, 0
            cells = [parse_cell(cell) for cell in element]
            if too_long:
                position, length = too_long[0]
                yield number, BadRow(column=cells[position]["column"], length=length)
                continue
            if markers:
                over = next((c for c in cells if type(c["value"]) is TooLong), None)
                if over is not None:
                    yield number, BadRow(column=over["column"], length=over["value"].length)
                    continue
            if cells:
                values: list[Any] = [None] * max(cell["column"] for cell in cells)
                for cell in cells:
                    values[cell["column"] - 1] = cell["value"]
                yield number, values
