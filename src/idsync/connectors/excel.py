"""Excel workbooks (.xlsx) as a data source.

One sheet is streamed row by row (openpyxl in read-only mode, with a row loop
and a shared-string reader of our own, see :func:`_stream_rows` and
:mod:`idsync.connectors.excel_xml`), so a sheet of a million rows needs no
more memory than its shared-string table (which the format keeps apart from
the rows, and which is held compactly) and one row. However the file is
made, memory stays bounded by settings: a part decompressing past its limit
is refused before it is read, and a cell longer than IDSYNC_EXCEL_CELL_LIMIT
is never held whole (its row is a record error). That loop uses openpyxl
internals, so the dependency is pinned to the minor version it was checked
against (a test compares its rows with openpyxl's public reader); should
they be missing all the same, workbooks are opened and sheets read with the
public reader (:func:`_public_rows`), whose memory grows with the sheet and
its longest cell. Formulas are read as the value Excel last computed and
saved (``data_only``): a workbook written by a program that never computed
its formulas shows them as empty cells.

Cells are typed; :func:`cell_text` turns each value into text the same way
whatever program wrote the file, so a key or a comparison with the directory
never depends on how a number happened to be stored (``42`` and ``42.0`` are
both ``"42"``). Each row becomes a :class:`Record` whose ``line`` is the
sheet's row number, as Excel shows it.

A bad row never stops the read: a cell holding an Excel error (``#DIV/0!``,
``#N/A``...), a value in a column the header does not name, or a text longer
than the cell limit is yielded as a RecordError naming the row and the cell.
Problems with the file or the sheet (missing, unreadable, not an .xlsx, too
large once decompressed, a sheet that does not exist, a bad header row)
raise before the first record.

The sheet's recorded size (its "dimension") is not trusted: some programs
write a wrong one, which would silently cut rows off or pad them. (openpyxl
reads it when the workbook opens; for a sheet saved without one, that means
one extra pass over the sheet.)
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any

from idsync import settings
from idsync.connectors.excel_xml import (
    BadRow,
    SharedStrings,
    TooLong,
    check_sizes,
    read_shared_strings,
)
from idsync.connectors.files import open_source_file
from idsync.domain.definitions import ExcelSource
from idsync.domain.entry import Record
from idsync.errors import ConfigError, ConnectorError, RecordError

logger = logging.getLogger(__name__)

# openpyxl warns (on standard error) about workbook features it does not read,
# such as data validation or conditional formatting; they do not matter for
# the cell values read here, and problems that do are reported as errors.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl(\.|$)")

# The values of Excel's error cells. openpyxl reports an error cell as its
# text; Excel itself turns these texts into errors when they are typed.
ERROR_VALUES = frozenset({
    "#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA",
    "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!",
})

_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, and password-protected .xlsx
_EXACT_INTEGERS = 2**53  # floats below this hold whole numbers exactly
_SHOWN_COLUMNS = 12


# ---------------------------------------------------------------- typed values as text


def cell_text(value: object) -> str:
    """A typed cell value as record text, predictably.

    ``None`` → ``""``; booleans → ``TRUE``/``FALSE``; integers, and floats
    holding a whole number below 2**53, without a decimal point; other floats
    in their shortest exact form (``0.1``, ``1e+20``); a datetime at midnight
    (what a date cell holds) → ``2024-03-01``, other datetimes →
    ``2024-03-01T08:30:00`` (timezone-aware ones in UTC with ``Z``); dates and
    times in ISO 8601; durations as ``H:MM:SS``; anything else as ``str()``.
    """
    if value is None:
        return ""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is bool:
        return "TRUE" if value else "FALSE"
    if kind is int:
        return str(value)
    if kind is float:
        return float_text(value)  # type: ignore[arg-type]
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return datetime_text(value)
        if value.hour == value.minute == value.second == value.microsecond == 0:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return duration_text(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float_text(float(value))
    return str(value)


def float_text(value: float) -> str:
    """``3.0`` → ``"3"``; ``0.1`` → ``"0.1"`` (Python's shortest round-tripping form)."""
    if value.is_integer() and abs(value) < _EXACT_INTEGERS:
        return str(int(value))
    return repr(value)


def datetime_text(value: datetime) -> str:
    """A datetime in ISO 8601, always with its time; an aware one converted to UTC (``Z``)."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    return value.isoformat()


def duration_text(value: timedelta) -> str:
    """A duration as Excel's ``[h]:mm:ss`` shows it: ``26:00:00``, ``-0:30:00``, ``1:02:03.500000``."""
    micro = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micro < 0 else ""
    seconds, fraction = divmod(abs(micro), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{sign}{hours}:{minute:02d}:{second:02d}" + (f".{fraction:06d}" if fraction else "")


def column_letter(index: int) -> str:
    """The spreadsheet letters of 1-based column *index*: 1 → A, 27 → AA."""
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:_SHOWN_COLUMNS]) + (", ..." if len(names) > _SHOWN_COLUMNS else "")


# ---------------------------------------------------------------- the reader


class _Book:
    """An open workbook and the file under it, closed together."""

    def __init__(self, handle: IO[bytes], workbook: Any) -> None:
        self.handle = handle
        self.workbook = workbook

    def close(self) -> None:
        try:
            self.workbook.close()
        finally:
            self.handle.close()


class ExcelReader:
    """One sheet of an .xlsx workbook read as a stream of records.

    ``header_row`` (1-based) names the columns and rows above it are ignored;
    ``fields`` then renames them (same count). With ``header_row`` 0 there is
    no header: ``fields`` names the columns and every row is data.
    """

    def __init__(
        self,
        path: Path,
        *,
        sheet: str | None = None,
        header_row: int = 1,
        fields: Sequence[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.sheet = sheet
        if header_row < 0:
            raise ConfigError(f"Excel source {self.path}: header_row must be 0 (no header) or a row number")
        if header_row == 0 and not fields:
            raise ConfigError(f"Excel source {self.path}: a sheet without a header row needs 'fields' (the column names)")
        self.header_row = header_row
        self.fields = list(fields) if fields else None
        if self.fields is not None:
            self._check_names(self.fields, "'fields'", self._where(sheet or "(first sheet)"))
        self._open_books: set[_Book] = set()

    def __repr__(self) -> str:
        return f"ExcelReader({str(self.path)!r}, sheet={self.sheet!r}, header_row={self.header_row})"

    # ------------------------------------------------------------ the Source protocol

    def read(self) -> Iterator[Record | RecordError]:
        """Open the workbook, find the sheet and read its header (raising on
        source-level problems); then an iterator over records and record errors."""
        book = self._open()
        try:
            title, rows = self._sheet_rows(book)
            names = self._names(rows, title)
        except BaseException:
            self._close_book(book)
            raise
        return self._records(book, rows, names)

    def columns(self) -> list[str]:
        """The column names: from the header row (or ``fields``)."""
        return self._describe()[1]

    def test(self) -> str:
        """Open the workbook and the sheet and read the header; a one-line description."""
        title, names = self._describe()
        return f"Excel file {self.path}, sheet {title!r}: {len(names)} columns ({_shown(names)})"

    def close(self) -> None:
        """Close the workbooks of reads not iterated to the end."""
        for book in list(self._open_books):
            self._close_book(book)

    # ------------------------------------------------------------ opening

    def _where(self, title: str) -> str:
        return f"Excel file {self.path}, sheet {title!r}"

    def _describe(self) -> tuple[str, list[str]]:
        book = self._open()
        try:
            title, rows = self._sheet_rows(book)
            return title, self._names(rows, title)
        finally:
            self._close_book(book)

    def _open(self) -> _Book:
        handle = open_source_file(self.path, "Excel file", mode="rb")
        try:
            workbook = self._load(handle)
        except BaseException:
            handle.close()
            raise
        book = _Book(handle, workbook)
        self._open_books.add(book)
        return book

    def _load(self, handle: IO[bytes]) -> Any:
        # Imported here: the SQL source shares cell_text and need not load openpyxl.
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            head = handle.read(8)
            handle.seek(0)
        except OSError as exc:
            raise ConnectorError(f"Excel file {self.path} cannot be read: {exc.strerror or exc}") from exc
        if not head:
            raise ConnectorError(f"Excel file {self.path} is empty: expected an .xlsx workbook")
        if head == _OLE_SIGNATURE:
            raise ConnectorError(
                f"Excel file {self.path} is an old .xls workbook or a password-protected one: "
                "save it from Excel as .xlsx (Excel Workbook) without a password"
            )
        if not head.startswith(b"PK"):
            raise ConnectorError(
                f"Excel file {self.path} is not an .xlsx workbook"
                + (" (it looks like text: use a csv source for CSV files)" if _looks_like_text(head) else "")
            )
        try:
            with zipfile.ZipFile(handle) as archive:
                check_sizes(
                    archive, f"Excel file {self.path}",
                    sheet_limit=settings.get_int("excel_sheet_limit"), part_limit=settings.get_int("excel_part_limit"),
                )
            handle.seek(0)
            try:
                reader_class = _bounded_reader(settings.get_int("excel_cell_limit"))
            except (ImportError, AttributeError, TypeError) as exc:
                logger.warning(
                    "openpyxl %s lacks the workbook reader idsync extends (%s); opening workbooks with its "
                    "public reader, whose memory grows with the longest cell", _openpyxl_version(), _reason(exc)
                )
                return load_workbook(handle, read_only=True, data_only=True)
            reader = reader_class(handle, read_only=True, data_only=True)
            reader.read()
            return reader.wb
        except ConnectorError:
            raise
        except zipfile.BadZipFile as exc:
            raise ConnectorError(
                f"Excel file {self.path} is damaged: not a complete .xlsx archive ({exc}); save it again from Excel"
            ) from exc
        except (KeyError, InvalidFileException) as exc:
            raise ConnectorError(
                f"Excel file {self.path} is a zip archive but not an .xlsx workbook (an .ods or .docx file?)"
            ) from exc
        except OSError as exc:
            raise ConnectorError(f"Excel file {self.path} cannot be read: {exc.strerror or exc}") from exc
        except Exception as exc:  # openpyxl raises many kinds on malformed parts
            # openpyxl wraps a ValueError in one saying only which part it was reading
            cause = exc.__cause__ if isinstance(exc.__cause__, ValueError) else exc
            raise ConnectorError(
                f"Excel file {self.path} cannot be read as a workbook: {_reason(cause)}; save it again from Excel"
            ) from exc

    def _sheet_rows(self, book: _Book) -> tuple[str, Iterator[Row]]:
        """The chosen sheet's title and its rows from the header row on."""
        workbook = book.workbook
        if self.sheet is None:
            if not workbook.worksheets:
                raise ConfigError(f"Excel file {self.path} has no worksheet")
            sheet = workbook.worksheets[0]
        else:
            names: list[str] = list(workbook.sheetnames)
            title = self.sheet if self.sheet in names else next(
                (n for n in names if n.casefold() == self.sheet.casefold()), None
            )
            if title is None:
                raise ConfigError(
                    f"Excel file {self.path} has no sheet {self.sheet!r}; its sheets: "
                    + ", ".join(repr(n) for n in names)
                )
            sheet = workbook[title]
            if not hasattr(sheet, "iter_rows"):
                raise ConfigError(f"{self._where(title)} is a chart sheet, not a worksheet with rows")
        return sheet.title, sheet_rows(workbook, sheet, self.header_row or 1)

    def _names(self, rows: Iterator[Row], title: str) -> list[str]:
        """The column names, after reading the header row when there is one."""
        where = self._where(title)
        if not self.header_row:
            assert self.fields is not None
            return self.fields
        try:
            number, row = next(rows, (0, []))
        except Exception as exc:
            raise self._damaged(exc, self.header_row) from exc
        if number == self.header_row and isinstance(row, BadRow):
            raise ConfigError(f"{where}: the header row (row {number}) cannot be read: {self._bad_row_problem(row)}")
        cells = [cell_text(v) for v in row] if number == self.header_row and isinstance(row, list) else []
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            raise ConfigError(
                f"{where}: row {self.header_row} is empty, but it should be the header row naming "
                "the columns; set header_row to the row that names them"
            )
        for i, name in enumerate(cells, start=1):
            if name in ERROR_VALUES:
                raise ConfigError(
                    f"{where}: the header cell {column_letter(i)}{self.header_row} holds the error {name}; "
                    "give the column a name"
                )
        self._check_names(cells, f"the header row (row {self.header_row})", where)
        if self.fields is not None:
            if len(self.fields) != len(cells):
                raise ConfigError(
                    f"{where}: 'fields' names {len(self.fields)} columns but the header row has {len(cells)}"
                )
            return self.fields
        return cells

    @staticmethod
    def _check_names(names: Sequence[str], what: str, where: str) -> None:
        empty = [column_letter(i) for i, n in enumerate(names, start=1) if not n.strip()]
        if empty:
            raise ConfigError(
                f"{where}: {what} has columns without a name (column {', '.join(empty)}); name every column"
            )
        positions: dict[str, list[str]] = {}
        for i, n in enumerate(names, start=1):
            positions.setdefault(n, []).append(column_letter(i))
        dups = [f"{n!r} (columns {', '.join(p)})" for n, p in positions.items() if len(p) > 1]
        if dups:
            raise ConfigError(
                f"{where}: duplicate column names in {what}: {'; '.join(dups)}; "
                "rename them so each column has its own name"
            )

    def _close_book(self, book: _Book) -> None:
        self._open_books.discard(book)
        book.close()

    def _damaged(self, exc: Exception, row: int) -> ConnectorError:
        if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile):
            return ConnectorError(f"Excel file {self.path} cannot be read near row {row}: {exc.strerror or exc}")
        return ConnectorError(
            f"Excel file {self.path} is damaged near row {row}: {_reason(exc)}; save it again from Excel"
        )

    # ------------------------------------------------------------ rows

    def _records(
        self, book: _Book, rows: Iterator[Row], names: list[str]
    ) -> Iterator[Record | RecordError]:
        """The records of the rows after the header. Kept lean: it runs once per row."""
        count = len(names)
        errors = ERROR_VALUES
        number = self.header_row
        try:
            for number, row in rows:
                if isinstance(row, BadRow):
                    yield self._bad_row(row, names, number)
                    continue
                values = [v if type(v) is str else cell_text(v) for v in row]
                if not any(values):
                    continue
                if not errors.isdisjoint(values):
                    yield self._error_cell(values, names, number)
                    continue
                if len(values) > count:
                    extra = next((i for i in range(count, len(values)) if values[i]), None)
                    if extra is not None:
                        yield self._extra_cell(values, extra, names, number)
                        continue
                    del values[count:]
                elif len(values) < count:
                    values.extend([""] * (count - len(values)))
                yield Record(dict(zip(names, values, strict=True)), number)
        except Exception as exc:
            raise self._damaged(exc, number + 1) from exc
        finally:
            self._close_book(book)

    def _error_cell(self, values: list[str], names: list[str], number: int) -> RecordError:
        index = next(i for i, v in enumerate(values) if v in ERROR_VALUES)
        cell = f"{column_letter(index + 1)}{number}"
        column = f"column {names[index]}" if index < len(names) else f"column {column_letter(index + 1)}"
        return RecordError(
            f"row {number}, {column} ({cell}): the cell holds the error {values[index]}", line=number
        )

    def _bad_row(self, row: BadRow, names: list[str], number: int) -> RecordError:
        if not row.column:
            return RecordError(f"row {number}: {self._bad_row_problem(row)}", line=number)
        index = row.column - 1
        column = f"column {names[index]}" if index < len(names) else f"column {column_letter(row.column)}"
        return RecordError(
            f"row {number}, {column} ({column_letter(row.column)}{number}): {self._bad_row_problem(row)}",
            line=number,
        )

    @staticmethod
    def _bad_row_problem(row: BadRow) -> str:
        if row.column:
            return (
                f"the cell holds {row.length:,} characters, more than the {settings.get_int('excel_cell_limit'):,} "
                "allowed (IDSYNC_EXCEL_CELL_LIMIT)"
            )
        return f"{row.problem}; the row is skipped"

    def _extra_cell(self, values: list[str], index: int, names: list[str], number: int) -> RecordError:
        letter = column_letter(index + 1)
        text = values[index]
        shown = text if len(text) <= 40 else text[:40] + "…"
        named_by = "'fields'" if self.fields is not None and not self.header_row else f"the header row (row {self.header_row})"
        return RecordError(
            f"row {number}: cell {letter}{number} holds {shown!r} but {named_by} names only "
            f"{len(names)} columns (A to {column_letter(len(names))}); name column {letter} or clear the cell",
            line=number,
        )


Row = tuple[int, list[Any] | BadRow]
"""A sheet row: its number, and its cell values by column (``None`` where no
cell), or why it cannot be read."""


def sheet_rows(workbook: Any, sheet: Any, start: int) -> Iterator[Row]:
    """The rows of *sheet* from row *start* on, rows without cells left out.

    Streamed in flat memory by :func:`_stream_rows`; when the installed
    openpyxl lacks the internals it uses, read by openpyxl's public reader.
    """
    try:
        return _stream_rows(workbook, sheet, start)
    except (ImportError, AttributeError, TypeError) as exc:
        logger.warning(
            "openpyxl %s lacks the streaming row parser (%s); reading sheets with its "
            "public reader, whose memory grows with the sheet", _openpyxl_version(), _reason(exc)
        )
        return _public_rows(sheet, start)


def _stream_rows(workbook: Any, sheet: Any, start: int) -> Iterator[Row]:
    """:func:`sheet_rows` through openpyxl's cell parser. Raises ImportError,
    AttributeError or TypeError at once (before any row) when an internal it
    needs is missing.

    openpyxl's own read-only iteration keeps an emptied XML element (and for
    rows with a height or style, a dict) for every row read, so its memory
    grows with the sheet, and its XML parser holds each cell's text whole.
    This loop uses openpyxl's cell parser (types, dates, shared strings) on
    rows built by :func:`idsync.connectors.excel_xml.sheet_rows`, one at a
    time, with texts bounded by IDSYNC_EXCEL_CELL_LIMIT.
    """
    from openpyxl.worksheet._reader import WorkSheetParser
    from openpyxl.xml.constants import SHEET_MAIN_NS

    from idsync.connectors.excel_xml import sheet_rows as parsed_rows

    # The read-only sheet holds the workbook's shared-string table
    # (``workbook.shared_strings`` is the empty table of a workbook being written).
    parser = WorkSheetParser(
        None, sheet._shared_strings, data_only=True, epoch=workbook.epoch,
        date_formats=workbook._date_formats, timedelta_formats=workbook._timedelta_formats,
    )
    parser.row_counter, parser.col_counter, parser.parse_cell  # noqa: B018 - the loop uses them: they must exist
    archive, part = workbook._archive, sheet._worksheet_path
    limit = settings.get_int("excel_cell_limit")

    def rows() -> Iterator[Row]:
        with archive.open(part) as source:
            yield from parsed_rows(source, parser, SHEET_MAIN_NS, start, limit)

    return rows()


def _public_rows(sheet: Any, start: int) -> Iterator[Row]:
    """:func:`sheet_rows` through openpyxl's public ``iter_rows``; its memory
    grows with the rows read (see :func:`_stream_rows`)."""
    if hasattr(sheet, "reset_dimensions"):
        sheet.reset_dimensions()  # the recorded size is not trusted (see the module docstring)
    strings = getattr(sheet, "_shared_strings", None)
    markers = isinstance(strings, SharedStrings) and strings.has_too_long
    for number, row in enumerate(sheet.iter_rows(min_row=start, values_only=True), start=start):
        if markers:
            over = next((i for i, v in enumerate(row) if type(v) is TooLong), None)
            if over is not None:
                yield number, BadRow(column=over + 1, length=row[over].length)
                continue
        if row:
            yield number, list(row)


def _bounded_reader(limit: int) -> Any:
    """openpyxl's workbook reader class with two parts of its work replaced:
    the shared strings are read by
    :func:`~idsync.connectors.excel_xml.read_shared_strings` (texts over
    *limit* characters kept as their length only), and worksheets are set up
    (read-only) without reading their recorded size, which for a sheet saved
    without one means parsing the whole sheet with a parser that holds each
    text whole. ImportError, AttributeError or TypeError when openpyxl lacks
    what it uses."""
    from openpyxl.reader.excel import ExcelReader as WorkbookReader
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet
    from openpyxl.xml.constants import SHARED_STRINGS

    class Sheet(ReadOnlyWorksheet):  # type: ignore[misc]
        def _get_size(self) -> None:
            """The recorded size is not trusted (see the module docstring)."""

    class Reader(WorkbookReader):  # type: ignore[misc]
        def read_strings(self) -> None:
            part = self.package.find(SHARED_STRINGS)
            if part is not None:
                with self.archive.open(part.PartName[1:]) as source:
                    self.shared_strings = read_shared_strings(source, limit)

        def read_worksheets(self) -> None:
            for sheet, rel in self.parser.find_sheets():
                if rel.target not in self.valid_files:
                    continue
                if "chartsheet" in rel.Type:
                    self.read_chartsheet(sheet, rel)
                    continue
                worksheet = Sheet(self.wb, sheet.name, rel.target, self.shared_strings)
                worksheet.sheet_state = sheet.state
                self.wb._sheets.append(worksheet)

    for name in ("read", "read_chartsheet", "read_manifest"):
        getattr(WorkbookReader, name)  # they must exist
    return Reader


def _openpyxl_version() -> str:
    from openpyxl import __version__

    return str(__version__)


def _looks_like_text(head: bytes) -> bool:
    return all(b in b"\t\r\n" or 32 <= b < 127 for b in head)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def resolve_path(path: str) -> Path:
    """*path* with ``~`` expanded; a relative path is under IDSYNC_HOME."""
    resolved = Path(path).expanduser()
    return resolved if resolved.is_absolute() else settings.home() / resolved


def open_excel_source(definition: ExcelSource, secrets: Mapping[str, str]) -> ExcelReader:
    """The reader for an Excel source definition; a relative path is under IDSYNC_HOME."""
    return ExcelReader(
        resolve_path(definition.path),
        sheet=definition.sheet,
        header_row=definition.header_row,
        fields=definition.fields,
    )

