"""CSV, TSV and other delimited text files as a data source.

The file is streamed with the standard ``csv`` module, never read whole, so
a source of millions of rows needs no more memory than one row. Each row
becomes a :class:`Record` mapping column name to the cell text exactly as in
the file (``""`` for an empty cell), with the physical line where the row
starts (quoted cells may span lines; they are counted).

A malformed row never stops the read: a wrong number of cells, bytes that
are not valid in the file's encoding, a NUL byte, a quote that is never
closed, text after a closing quote, or a field longer than
IDSYNC_CSV_FIELD_LIMIT is yielded as a RecordError naming the line, and
reading goes on with the next row. Problems with the file itself (missing,
unreadable, empty, a bad header) raise before the first record.

Memory stays bounded by that limit whatever the file holds: the ``csv``
module takes the file line by line, and a line without an end (a 1 GB file
of one line) would be read whole before the field limit is checked. So the
lines reach it through :class:`_Lines`, which hands over at most twice the
field limit per row; a longer row is a RecordError, and the rest of its
line is read in small pieces and dropped.

Undecodable bytes are found without decoding twice: the file is opened with
the ``idsync.escape`` error handler, which (like ``surrogateescape``, but for
every byte and every codec, so a truncated utf-16 file is no exception) turns
each bad byte into a lone surrogate character; a row is scanned for them only
when it is not plain ASCII.
A ``utf-8`` file that starts with a byte order mark is read as ``utf-8-sig``
so the mark does not end up in the first column's name.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TextIO, cast

from idsync import settings
from idsync.connectors.files import open_source_file
from idsync.domain.definitions import CsvSource
from idsync.domain.entry import Record
from idsync.errors import ConfigError, ConnectorError, RecordError

_BAD_CHAR = re.compile("[\x00\udc00-\udcff]")
_ESCAPED = re.compile("[\udc00-\udcff]")
_ERRORS = "idsync.escape"
_BUFFER = 1 << 16
_SHOWN_COLUMNS = 12
ROW_FACTOR = 2
"""A row may hold at most this many times the field limit, its fields and line ends together."""


class _RowReader(Protocol):
    """What idsync uses of a ``csv.reader``: its rows."""

    def __iter__(self) -> _RowReader: ...

    def __next__(self) -> list[str]: ...


class _RowTooLong(Exception):
    """A row longer than :class:`_Lines` hands over; the rest of its line was dropped."""


class _Lines:
    """The physical lines of a text file, as ``csv.reader`` takes them, with
    at most *limit* characters per row.

    The reader is told where each row ends (:meth:`row_done`); a line that
    would take the row past *limit* raises :class:`_RowTooLong` after the rest
    of the line is read in pieces of 64 Ki characters and dropped, so no more
    than *limit* characters of it are ever held. ``count`` is the number of
    physical lines consumed, the long ones included.
    """

    __slots__ = ("_cut_cr", "_readline", "count", "limit", "used")

    def __init__(self, handle: TextIO, limit: int) -> None:
        self._readline = handle.readline
        self.limit = limit
        self.count = 0
        self.used = 0
        self._cut_cr = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        room = self.limit - self.used
        line = self._readline(room + 1)
        if self._cut_cr:
            # The dropped piece ended in "\r", perhaps the first half of "\r\n".
            self._cut_cr = False
            if line[:1] == "\n":
                line = line[1:] or self._readline(room + 1)
        if not line:
            raise StopIteration
        self.count += 1
        if len(line) > room:
            self._drop_rest(line)
            raise _RowTooLong
        self.used += len(line)
        return line

    def row_done(self) -> None:
        """The reader has the whole row: the next line starts a new one."""
        self.used = 0

    def _drop_rest(self, piece: str) -> None:
        while piece and piece[-1] not in "\r\n":
            piece = self._readline(_BUFFER)
        self._cut_cr = piece.endswith("\r")
        self.used = 0


def _escape(exc: UnicodeError) -> tuple[str, int]:
    """Decode each undecodable byte *b* as the lone surrogate U+DC00+b.

    No valid decoding yields a lone surrogate, so finding one in a row proves
    the file had bytes not valid in its encoding, and which ones.
    """
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC00 + b) for b in bad), exc.end


codecs.register_error(_ERRORS, _escape)


def _show_bytes(text: str) -> str:
    """*text* with each undecodable byte written as ``\\xNN``, shortened around the first one."""
    first = _ESCAPED.search(text)
    start = max(0, first.start() - 15) if first else 0
    excerpt = text[start : start + 40]
    shown = _ESCAPED.sub(lambda m: f"\\x{ord(m.group(0)) - 0xDC00:02x}", excerpt)
    return ("…" if start else "") + shown + ("…" if start + 40 < len(text) else "")


def _csv_problem(exc: csv.Error) -> str:
    """A csv module error in words a person editing the file understands."""
    text = str(exc)
    if "unexpected end of data" in text:
        return "a quoted field is not closed before the end of the file (a missing closing quote)"
    if "expected after" in text:
        return "text after the closing quote of a field (quote the whole field, and double any quote inside it)"
    if "field larger than field limit" in text:
        return (
            f"a field is longer than {csv.field_size_limit():,} characters "
            "(a missing closing quote? or raise IDSYNC_CSV_FIELD_LIMIT)"
        )
    return text


def _too_long(limit: int) -> str:
    return (
        f"the row is longer than {limit:,} characters (twice IDSYNC_CSV_FIELD_LIMIT) and was skipped "
        "(a missing closing quote? or raise IDSYNC_CSV_FIELD_LIMIT)"
    )


class CsvReader:
    """A delimited text file read as a stream of records.

    With ``header`` the first non-blank row names the columns; ``fields``
    then renames them (same count). Without ``header``, ``fields`` is required
    and every row is data.
    """

    def __init__(
        self,
        path: Path,
        *,
        delimiter: str = ",",
        quotechar: str = '"',
        encoding: str = "utf-8",
        header: bool = True,
        fields: Sequence[str] | None = None,
    ) -> None:
        self.path = Path(path)
        where = f"CSV source {self.path}"
        if len(delimiter) != 1 or delimiter in "\r\n":
            raise ConfigError(f"{where}: the delimiter must be one character other than a line break (use 'tab' for a tab)")
        if len(quotechar) != 1 or quotechar in "\r\n" or quotechar == delimiter:
            raise ConfigError(f"{where}: the quote character must be one character, not the delimiter")
        try:
            codec = codecs.lookup(encoding)
        except LookupError as exc:
            raise ConfigError(f"{where}: unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252, utf-16)") from exc
        if not header and not fields:
            raise ConfigError(f"{where}: a file without a header row needs 'fields' (the column names)")
        self.delimiter = delimiter
        self.quotechar = quotechar
        self.encoding = encoding
        self.header = header
        self.fields = list(fields) if fields else None
        if self.fields is not None:
            self._check_names(self.fields, "'fields'")
        # A BOM at the start of a utf-8 file is not data: utf-8-sig drops it, and
        # decodes a file without one exactly as utf-8 does.
        self._codec = "utf-8-sig" if codec.name == "utf-8" else codec.name
        self._open_files: set[TextIO] = set()

    def __repr__(self) -> str:
        return f"CsvReader({str(self.path)!r}, delimiter={self.delimiter!r}, encoding={self.encoding!r})"

    # ------------------------------------------------------------ the Source protocol

    def read(self) -> Iterator[Record | RecordError]:
        """Open the file, read the header (raising on source-level problems)
        and return an iterator over the records and record errors."""
        # Group member lists make long fields; the limit is the process's own.
        csv.field_size_limit(settings.get_int("csv_field_limit"))
        handle = self._open()
        try:
            lines, reader = self._reader(handle)
            names = self._names(lines, reader)
        except BaseException:
            self._close_file(handle)
            raise
        return self._rows(handle, lines, reader, names)

    def columns(self) -> list[str]:
        """The column names: ``fields`` when given, else the header row."""
        if not self.header:
            assert self.fields is not None
            return list(self.fields)
        handle = self._open()
        try:
            return self._names(*self._reader(handle))
        finally:
            self._close_file(handle)

    def test(self) -> str:
        """Open the file and read its header; a one-line description."""
        names = self.columns()
        if not self.header:
            self._close_file(self._open())
        shown = ", ".join(names[:_SHOWN_COLUMNS]) + (", ..." if len(names) > _SHOWN_COLUMNS else "")
        return f"CSV file {self.path}: {len(names)} columns ({shown})"

    def close(self) -> None:
        """Close the files of reads not iterated to the end."""
        for handle in list(self._open_files):
            self._close_file(handle)

    # ------------------------------------------------------------ internals

    def _open(self) -> TextIO:
        handle = cast(TextIO, open_source_file(
            self.path, "CSV file", encoding=self._codec, errors=_ERRORS, newline="", buffering=_BUFFER
        ))
        self._open_files.add(handle)
        return handle

    def _close_file(self, handle: TextIO) -> None:
        self._open_files.discard(handle)
        handle.close()

    def _reader(self, handle: TextIO) -> tuple[_Lines, _RowReader]:
        """The file's lines, bounded by the field limit, and the csv reader taking them."""
        lines = _Lines(handle, ROW_FACTOR * csv.field_size_limit())
        # strict: a quote never closed, or text after a closing quote, is an
        # error for that row instead of silently swallowing the lines after it.
        return lines, csv.reader(lines, delimiter=self.delimiter, quotechar=self.quotechar, strict=True)

    def _decode_error(self, exc: UnicodeError, lines: _Lines) -> ConnectorError:
        line = lines.count + 1
        return ConnectorError(
            f"CSV file {self.path} cannot be decoded as {self.encoding} near line {line}: "
            f"{exc.reason if isinstance(exc, UnicodeDecodeError) else exc} (check the source's encoding)"
        )

    def _names(self, lines: _Lines, reader: _RowReader) -> list[str]:
        """The column names, after reading the header row when there is one."""
        if not self.header:
            assert self.fields is not None
            return self.fields
        try:
            row: list[str] = []
            while not row:
                row = next(reader)
                lines.row_done()
        except StopIteration:
            raise ConfigError(f"CSV file {self.path} is empty: expected a header row naming the columns") from None
        except csv.Error as exc:
            raise ConfigError(f"CSV file {self.path}: the header row cannot be read: {_csv_problem(exc)}") from exc
        except _RowTooLong:
            raise ConfigError(f"CSV file {self.path}: the header row cannot be read: {_too_long(lines.limit)}") from None
        except UnicodeError as exc:
            raise self._decode_error(exc, lines) from exc
        except OSError as exc:
            raise ConnectorError(f"CSV file {self.path} cannot be read: {exc.strerror or exc}") from exc
        joined = "".join(row)
        if "\x00" in joined:
            raise ConfigError(
                f"CSV file {self.path}: the header contains NUL bytes; the file may be binary "
                f"or in another encoding (e.g. utf-16)"
            )
        if _ESCAPED.search(joined):
            column, name = next((i, n) for i, n in enumerate(row, start=1) if _ESCAPED.search(n))
            raise ConfigError(
                f"CSV file {self.path}: the header has bytes not valid {self.encoding} in column "
                f"{column} ({_show_bytes(name)}); set the source's encoding (e.g. latin-1, cp1252)"
            )
        self._check_names(row, "the header")
        if self.fields is not None:
            if len(self.fields) != len(row):
                raise ConfigError(
                    f"CSV file {self.path}: 'fields' names {len(self.fields)} columns "
                    f"but the header has {len(row)}"
                )
            return self.fields
        return row

    def _check_names(self, names: Sequence[str], what: str) -> None:
        empty = [str(i) for i, n in enumerate(names, start=1) if not n.strip()]
        if empty:
            raise ConfigError(
                f"CSV file {self.path}: {what} has columns without a name "
                f"(column {', '.join(empty)}); name every column"
            )
        positions: dict[str, list[int]] = {}
        for i, n in enumerate(names, start=1):
            positions.setdefault(n, []).append(i)
        dups = [
            f"{n!r} (columns {', '.join(map(str, p))})" for n, p in positions.items() if len(p) > 1
        ]
        if dups:
            raise ConfigError(
                f"CSV file {self.path}: duplicate column names in {what}: {'; '.join(dups)}; "
                "rename them so each column has its own name"
            )

    def _rows(
        self, handle: TextIO, lines: _Lines, reader: _RowReader, names: list[str]
    ) -> Iterator[Record | RecordError]:
        """The records after the header. Kept lean: it runs once per row."""
        count = len(names)
        join = "".join
        bad = _BAD_CHAR.search
        row_done = lines.row_done
        done = lines.count  # the last physical line the reader consumed
        try:
            while True:
                try:
                    for row in reader:
                        row_done()
                        start = done + 1
                        done = lines.count
                        if len(row) == count:
                            text = join(row)
                            if "\x00" in text or (not text.isascii() and bad(text)):
                                yield self._bad_row(row, names, start)
                            else:
                                yield Record(dict(zip(names, row, strict=False)), start)
                        elif row:
                            yield self._short_or_long_row(row, names, start)
                    return
                except (csv.Error, _RowTooLong) as exc:
                    row_done()
                    start = done + 1
                    done = lines.count
                    problem = _csv_problem(exc) if isinstance(exc, csv.Error) else _too_long(lines.limit)
                    yield RecordError(f"line {start}: {problem}", line=start)
        except UnicodeError as exc:
            raise self._decode_error(exc, lines) from exc
        except OSError as exc:
            raise ConnectorError(f"CSV file {self.path} cannot be read: {exc.strerror or exc}") from exc
        finally:
            self._close_file(handle)

    def _short_or_long_row(self, row: list[str], names: list[str], line: int) -> RecordError:
        # Bad bytes are the likelier cause (a utf-16 file cut short, a stray
        # quote in another encoding), so they are reported first.
        text = "".join(row)
        if "\x00" in text or _ESCAPED.search(text):
            return self._bad_row(row, names, line)
        return RecordError(f"line {line}: expected {len(names)} fields, found {len(row)}", line=line)

    def _bad_row(self, row: list[str], names: list[str], line: int) -> RecordError:
        for i, cell in enumerate(row):
            name = names[i] if i < len(names) else f"column {i + 1}"
            if "\x00" in cell:
                return RecordError(
                    f"line {line}: NUL byte in field {name!r}; the file may be binary "
                    f"or in another encoding (e.g. utf-16)",
                    line=line,
                )
            if _ESCAPED.search(cell):
                return RecordError(
                    f"line {line}: bytes not valid {self.encoding} in field {name!r} "
                    f"({_show_bytes(cell)}); set the source's encoding (e.g. latin-1, cp1252)",
                    line=line,
                )
        return RecordError(f"line {line}: unreadable characters", line=line)  # pragma: no cover


def open_csv_source(definition: CsvSource, secrets: Mapping[str, str]) -> CsvReader:
    """The reader for a CSV source definition; a relative path is under IDSYNC_HOME."""
    path = Path(definition.path).expanduser()
    if not path.is_absolute():
        path = settings.home() / path
    return CsvReader(
        path,
        delimiter=definition.delimiter,
        quotechar=definition.quotechar,
        encoding=definition.encoding,
        header=definition.header,
        fields=definition.fields,
    )
