"""Sources and readers stream: reading four times as much holds no more memory.

Each test reads a small and a large input and compares the peaks traced by
tracemalloc. They take a few seconds each, so they live here rather than in
the fast unit tests; the helpers that build the inputs stay with the unit
tests of each reader.
"""

from __future__ import annotations

from pathlib import Path

from idsync.connectors.excel import ExcelReader
from idsync.connectors.sql import SqlReader
from idsync.domain.entry import Record
from idsync.domain.ldif_reader import LdifRecord, read_ldif
from idsync.errors import RecordError
from tests.memory import LARGE, SMALL, drain, traced_peak
from tests.unit.test_excel_source import long_books, reading
from tests.unit.test_ldif import _ldif_lines
from tests.unit.test_sql_source import people_table, url_of

__all__ = ["long_books"]  # a fixture, used by name


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
