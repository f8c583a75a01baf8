"""The Excel reader's own row loop uses openpyxl internals: it must give
exactly the rows openpyxl's public reader gives, and the reader must fall back
to the public reader when those internals are missing (another openpyxl).

The workbooks are written with openpyxl, then edited the way other programs
write them: shared strings (Excel's way; openpyxl writes inline strings),
rows and cells without their ``r`` reference, a wrong recorded size, a
formula with its saved value, the 1904 date system.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.utils.datetime import CALENDAR_MAC_1904
from openpyxl.worksheet import _read_only, _reader

from idsync.connectors.excel import ExcelReader, _stream_rows
from idsync.domain.entry import Record
from tests.unit.test_excel_source import write_book

SHEET = "xl/worksheets/sheet1.xml"

ROWS: list[list[Any]] = [
    ["Title"],
    [],
    ["ID", "Name", "Hired", "Start", "Shift", "Worked", "Salary", "Rate", "Active", "Note", "Total"],
    [1, "Ann", datetime(2024, 3, 1), datetime(2024, 3, 1, 8, 30), time(9, 0), timedelta(hours=30),
     52000.0, 0.25, True, " spaced ", "=1+1"],
    [2.0, "Bob", date(2020, 1, 2), None, None, None, 1234.5, 1e-7, False, "", None],
    [None, None, None, None, None, None, None, None, None, None, None],
    [3, "Cy", None, None, None, None, 12345678901234567890, -0.0, None, "#VALUE!", None, None, "beyond"],
    [None, "Eve"],
    ["x" * 300, "Ünïcødé ✓", "<&>", "line\nbreak"],
]


def share_strings(xml_parts: dict[str, str]) -> None:
    """Turn the sheet's inline strings into a shared-string table, as Excel writes them."""
    table: list[str] = []

    def shared(match: re.Match[str]) -> str:
        table.append(match.group(2))
        return f'<c {match.group(1)}t="s"><v>{len(table) - 1}</v></c>'

    xml_parts[SHEET] = re.sub(
        r'<c ([^>]*?)t="inlineStr"><is><t(?: [^>]*)?>(.*?)</t></is></c>', shared, xml_parts[SHEET], flags=re.S
    ).replace(' t="inlineStr" />', " />")  # an empty string: a cell without a value
    assert table and "inlineStr" not in xml_parts[SHEET]
    items = "".join(f'<si><t xml:space="preserve">{text}</t></si>' for text in table)
    xml_parts["xl/sharedStrings.xml"] = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'count="{len(table)}" uniqueCount="{len(table)}">{items}</sst>'
    )
    xml_parts["[Content_Types].xml"] = xml_parts["[Content_Types].xml"].replace(
        "</Types>",
        '<Override PartName="/xl/sharedStrings.xml" ContentType='
        '"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml" /></Types>',
    )
    xml_parts["xl/_rels/workbook.xml.rels"] = xml_parts["xl/_rels/workbook.xml.rels"].replace(
        "</Relationships>",
        '<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
        'Target="sharedStrings.xml" Id="rIdShared" /></Relationships>',
    )


def drop_references(xml_parts: dict[str, str]) -> None:
    """Rows and cells without their ``r`` attribute (each follows the one before)."""
    xml_parts[SHEET] = re.sub(r'<(row|c) r="[^"]*"', r"<\1", xml_parts[SHEET])


def wrong_size(xml_parts: dict[str, str]) -> None:
    xml_parts[SHEET] = re.sub(r'<dimension ref="[^"]*"', '<dimension ref="A1:B2"', xml_parts[SHEET])


def saved_formula_value(xml_parts: dict[str, str]) -> None:
    xml_parts[SHEET] = xml_parts[SHEET].replace("<f>1+1</f><v />", "<f>1+1</f><v>2</v>")


def rewrite(path: Path, *edits: Callable[[dict[str, str]], None]) -> None:
    with zipfile.ZipFile(path) as old:
        parts = {info.filename: old.read(info.filename).decode("utf-8") for info in old.infolist()}
    for edit in edits:
        edit(parts)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for name, text in parts.items():
            new.writestr(name, text)


BOOKS: dict[str, tuple[Callable[[dict[str, str]], None], ...]] = {
    "inline strings": (),
    "shared strings": (share_strings,),
    "no references": (share_strings, drop_references),
    "wrong size": (wrong_size,),
}


@pytest.fixture(params=sorted(BOOKS))
def book(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = write_book(tmp_path / f"{request.param.replace(' ', '-')}.xlsx", ROWS)
    rewrite(path, saved_formula_value, *BOOKS[request.param])
    return path


@pytest.fixture
def book_1904(tmp_path: Path) -> Path:
    workbook = openpyxl.Workbook()
    workbook.epoch = CALENDAR_MAC_1904
    sheet = workbook.active
    assert sheet is not None
    for row in (["ID", "Hired", "Start"], [1, date(2024, 3, 1), datetime(1999, 12, 31, 23, 59)]):
        sheet.append(row)
    workbook.save(tmp_path / "mac.xlsx")
    return tmp_path / "mac.xlsx"


def public_rows(path: Path, start: int) -> list[tuple[int, list[Any]]]:
    """The rows as openpyxl's public reader gives them, numbered, rows without cells left out."""
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # type: ignore[union-attr]
        rows = sheet.iter_rows(min_row=start, values_only=True)
        return [(number, list(row)) for number, row in enumerate(rows, start=start) if row]
    finally:
        workbook.close()


def own_rows(path: Path, start: int) -> list[tuple[int, list[Any]]]:
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        return list(_stream_rows(workbook, workbook.worksheets[0], start))
    finally:
        workbook.close()


@pytest.mark.parametrize("start", [1, 3, 5])
def test_the_own_row_loop_gives_the_rows_of_the_public_reader(book: Path, start: int) -> None:
    own = own_rows(book, start)
    assert own == public_rows(book, start)
    if book.stem != "no-references":  # (there, rows openpyxl did not write take no number)
        assert own[-1][0] == len(ROWS)  # nothing cut off, whatever the recorded size


def test_the_rows_hold_typed_values(book: Path) -> None:
    """What the comparison covers: every kind of cell value, and shared strings where the book has them."""
    rows = dict(own_rows(book, 1))
    values = [v for row in rows.values() for v in row]
    assert {int, float, str, bool, datetime, time, timedelta, type(None)} <= {type(v) for v in values}
    assert {"#VALUE!", " spaced ", "Ünïcødé ✓", "line\nbreak", "<&>", "beyond", 1.234567890123457e19} <= set(values)
    if book.stem != "no-references":  # (there, cells after a gap move left)
        assert rows[4][10] == 2  # the formula's saved value


def test_a_workbook_with_shared_strings_is_read_as_excel_saved_it(tmp_path: Path) -> None:
    path = write_book(tmp_path / "excel.xlsx", [["ID", "Name"], [1, "Ann"], [2, " Bob "]])
    rewrite(path, share_strings)
    assert list(ExcelReader(path).read()) == [
        Record({"ID": "1", "Name": "Ann"}, line=2), Record({"ID": "2", "Name": " Bob "}, line=3),
    ]


def test_the_1904_date_system_is_read_like_the_public_reader(book_1904: Path) -> None:
    own = own_rows(book_1904, 1)
    assert own == public_rows(book_1904, 1)
    assert own[1][1][1:] == [datetime(2024, 3, 1), datetime(1999, 12, 31, 23, 59)]


class OtherParser:
    """A WorkSheetParser of another openpyxl version: it takes other arguments."""

    def __init__(self, source: object) -> None:
        self.source = source


@pytest.mark.parametrize(
    ("missing", "warning"),
    [
        pytest.param(lambda mp: mp.delattr(_reader, "WorkSheetParser"), "streaming row parser", id="parser-moved"),
        pytest.param(
            lambda mp: mp.setattr(_reader, "WorkSheetParser", OtherParser), "streaming row parser", id="parser-changed"
        ),
        pytest.param(
            lambda mp: mp.delattr(_read_only, "ReadOnlyWorksheet"), "workbook reader idsync extends", id="sheet-moved"
        ),
    ],
)
def test_without_the_internals_the_public_reader_gives_the_same_records(
    book: Path, missing: Callable[[pytest.MonkeyPatch], None], warning: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def read() -> list[tuple[str, int | None, str]]:
        items = ExcelReader(book, header_row=3).read()
        return [
            ("record", i.line, repr(i.fields)) if isinstance(i, Record) else ("error", i.line, i.message)
            for i in items
        ]

    expected = read()
    assert [kind for kind, _, _ in expected].count("record") >= 3
    missing(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="idsync.connectors.excel"):
        assert read() == expected
    assert f"openpyxl {openpyxl.__version__} lacks the {warning}" in caplog.text


def test_the_pinned_openpyxl_is_the_one_checked() -> None:
    """pyproject pins openpyxl to the minor version these tests compare against."""
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    pin = re.search(r'"openpyxl>=(\d+)\.(\d+)\.\d+,<(\d+)\.(\d+)"', pyproject)
    assert pin is not None, "openpyxl is pinned to one minor version"
    major, minor = (int(p) for p in openpyxl.__version__.split(".")[:2])
    assert (int(pin[1]), int(pin[2])) == (major, minor) and (int(pin[3]), int(pin[4])) == (major, minor + 1)

