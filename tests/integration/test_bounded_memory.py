"""Sources and readers stream: reading four times as much holds no more memory.

Each test reads a small and a large input and compares the peaks traced by
tracemalloc. They take a few seconds each, so they live here rather than in
the fast unit tests; helpers shared with the unit tests of a reader are
imported from them.
"""

from __future__ import annotations

import gc
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pytest

from idsync.connectors.excel import ExcelReader
from idsync.connectors.sql import SqlReader
from idsync.domain.entry import Record
from idsync.domain.ldif_reader import LdifRecord, read_ldif
from idsync.errors import RecordError
from tests.memory import LARGE, SMALL, drain, traced_peak
from tests.unit.test_excel_source import rewrite_part
from tests.unit.test_ldif import _ldif_lines
from tests.unit.test_sql_source import people_table, url_of


def long_book(folder: Path, rows: int) -> Path:
    """A sheet of *rows* people as Excel records it (with its size)."""
    path = folder / f"long-{rows}.xlsx"
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("People")
    sheet.append(["EmployeeID", "Mail", "Hired", "Salary"])
    start = date(2020, 1, 1)
    for i in range(rows):
        sheet.append([f"E{i:06d}", f"user{i}@example.org", start + timedelta(days=i % 1000), 1000 + i * 0.5])
    book.save(path)
    # Excel records each sheet's size; openpyxl's write-only mode does not.
    dimension = f'<dimension ref="A1:D{rows + 1}" /><sheetData>'
    rewrite_part(path, "xl/worksheets/sheet1.xml", lambda xml: xml.replace("<sheetData>", dimension, 1))
    return path


@pytest.fixture(scope="module")
def long_books(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("long")
    return {rows: long_book(folder, rows) for rows in (SMALL, LARGE)}


def reading(path: Path, settle: int) -> tuple[int, int, Record | RecordError | None]:
    """Read the whole sheet: the peak of traced memory, how far memory rose
    after the first *settle* rows above what was in use then, and the last item."""
    reader = ExcelReader(path)
    gc.collect()
    tracemalloc.start()
    try:
        settled = early_peak = 0
        last = None
        for count, item in enumerate(reader.read(), start=1):
            last = item
            if count == settle:
                settled, early_peak = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
        _, late_peak = tracemalloc.get_traced_memory()
    finally:
        reader.close()
        tracemalloc.stop()
    return max(early_peak, late_peak), late_peak - settled, last


def test_a_long_sheet_is_streamed_in_bounded_memory(long_books: dict[int, Path]) -> None:
    drain(ExcelReader(long_books[SMALL]).read())  # first use: caches, compiled patterns
    small_peak, _, _ = reading(long_books[SMALL], SMALL)
    large_peak, growth, last = reading(long_books[LARGE], SMALL)
    assert last == Record(
        {"EmployeeID": f"E{LARGE - 1:06d}", "Mail": f"user{LARGE - 1}@example.org", "Hired": "2022-09-26",
         "Salary": "4999.5"},
        line=LARGE + 1,
    )
    more = LARGE - SMALL
    # A sheet four times as long peaks no higher (differences seen: under
    # 1 KB); holding the records would take hundreds of bytes a row.
    assert large_peak - small_peak < 16 * more, f"peak {large_peak:,} bytes for {LARGE:,} rows, {small_peak:,} for {SMALL:,}"
    # Nor does memory creep up row by row, as with openpyxl's own iteration,
    # which keeps an emptied XML element a row (~470 KB here; seen: ~18 KB).
    assert growth < 16 * more, f"memory rose {growth:,} bytes over rows {SMALL:,} to {LARGE:,}"


def test_a_large_table_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    small, large = people_table(tmp_path / "small.db", SMALL), people_table(tmp_path / "large.db", LARGE)

    def read(db: Path) -> tuple[int, Record | RecordError | None]:
        return drain(SqlReader(url_of(db), table="people", batch_size=500).read())

    traced_peak(lambda: read(small))  # first use: the engine's caches
    small_peak, _ = traced_peak(lambda: read(small))
    large_peak, (count, last) = traced_peak(lambda: read(large))
    assert count == LARGE
    assert isinstance(last, Record) and last.line == LARGE and last.fields["mail"] == f"user{LARGE}@example.org"
    # 6,000 more rows add nothing to the peak (differences seen: under 2 KB);
    # holding the records would add hundreds of bytes each.
    growth = large_peak - small_peak
    assert growth < 10 * (LARGE - SMALL), f"peak {large_peak:,} bytes for {LARGE:,} rows, {small_peak:,} for {SMALL:,}"


def test_a_large_file_is_read_in_bounded_memory(tmp_path: Path) -> None:
    small, large = tmp_path / "small.ldif", tmp_path / "large.ldif"
    for path, count in ((small, SMALL), (large, LARGE)):
        with path.open("w", encoding="ascii") as out:
            out.writelines(_ldif_lines(count))

    def read_file(path: Path) -> tuple[int, LdifRecord | RecordError | None]:
        with path.open("rb") as handle:
            return drain(read_ldif(handle))

    read_file(small)  # first use: caches (parsed DNs) filled
    small_peak, _ = traced_peak(lambda: read_file(small))
    large_peak, (count, last) = traced_peak(lambda: read_file(large))
    assert count == LARGE and isinstance(last, LdifRecord)
    extra_bytes = large.stat().st_size - small.stat().st_size
    growth = large_peak - small_peak
    # A reader keeping the records would grow by more than their size; this one keeps one record.
    assert growth < extra_bytes / 4, f"{growth:,} bytes more for {extra_bytes:,} more bytes of LDIF"
