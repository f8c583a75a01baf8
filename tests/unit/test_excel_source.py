"""The Excel (.xlsx) data source, against real workbooks written with openpyxl in tmp_path."""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.chart import BarChart, Reference

from idsync.connectors.base import Source, factory_for
from idsync.connectors.excel import (
    ExcelReader,
    cell_text,
    column_letter,
    duration_text,
    open_excel_source,
)
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.definitions import ExcelSource
from idsync.domain.entry import Attrs, Record
from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.errors import ConfigError, ConnectorError, NotFoundError, RecordError
from idsync.services import definitions, jobs
from idsync.services.workspace import Workspace
from tests.files import open_fds_to

SUFFIX = "dc=example,dc=org"


def write_book(
    path: Path, rows: Sequence[Sequence[Any]], title: str = "People", others: Sequence[str] = ()
) -> Path:
    """A workbook whose first sheet *title* holds *rows* from A1, then empty sheets *others*."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if value is not None:
                sheet.cell(row=r, column=c, value=value)
    for name in others:
        book.create_sheet(name)
    book.save(path)
    return path


def read_all(path: Path, **options: Any) -> list[Record | RecordError]:
    return list(ExcelReader(path, **options).read())


def records(items: list[Record | RecordError]) -> list[Record]:
    return [i for i in items if isinstance(i, Record)]


def errors(items: list[Record | RecordError]) -> list[RecordError]:
    return [i for i in items if isinstance(i, RecordError)]


def rewrite_part(path: Path, part: str, change: Callable[[str], str]) -> None:
    """Edit one XML part of a workbook in place (to make files other programs write)."""
    with zipfile.ZipFile(path) as old:
        parts = {info.filename: old.read(info.filename) for info in old.infolist()}
    parts[part] = change(parts[part].decode("utf-8")).encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for name, data in parts.items():
            new.writestr(name, data)


# ---------------------------------------------------------------- values as text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("", ""),
        (" Ann ", " Ann "),
        (True, "TRUE"),
        (False, "FALSE"),
        (42, "42"),
        (-7, "-7"),
        (42.0, "42"),
        (-0.0, "0"),
        (1234.5, "1234.5"),
        (0.1, "0.1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1.5e-7, "1.5e-07"),
        (1e20, "1e+20"),
        (float(2**53 - 1), "9007199254740991"),
        (12345678901234567890, "12345678901234567890"),
        (datetime(2024, 3, 1), "2024-03-01"),
        (datetime(2024, 3, 1, 8, 30), "2024-03-01T08:30:00"),
        (datetime(2024, 3, 1, 0, 0, 0, 500_000), "2024-03-01T00:00:00.500000"),
        (datetime(2024, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))), "2024-03-01T08:00:00Z"),
        (datetime(2024, 3, 1, tzinfo=UTC), "2024-03-01T00:00:00Z"),
        (date(1999, 12, 31), "1999-12-31"),
        (time(8, 5, 9), "08:05:09"),
        (timedelta(hours=26), "26:00:00"),
        (timedelta(minutes=-30), "-0:30:00"),
        (timedelta(seconds=3723, microseconds=500_000), "1:02:03.500000"),
    ],
)
def test_typed_values_become_predictable_text(value: object, text: str) -> None:
    assert cell_text(value) == text


def test_column_letters() -> None:
    assert [column_letter(i) for i in (1, 2, 26, 27, 52, 53, 702, 703, 16384)] == [
        "A", "B", "Z", "AA", "AZ", "BA", "ZZ", "AAA", "XFD",
    ]
    assert duration_text(timedelta(0)) == "0:00:00"


# ---------------------------------------------------------------- reading


def test_typed_cells_are_read_as_text_with_sheet_row_numbers(tmp_path: Path) -> None:
    path = write_book(tmp_path / "hr.xlsx", [
        ["ID", "Name", "Hired", "Start", "Salary", "Rate", "Active", "Shift"],
        [1, "Ann", datetime(2024, 3, 1), datetime(2024, 3, 1, 8, 30), 52000.0, 0.25, True, time(9, 0)],
        [2.0, " Bob ", date(2020, 1, 2), None, 1234.5, 1e-7, False, None],
    ])
    assert read_all(path) == [
        Record({"ID": "1", "Name": "Ann", "Hired": "2024-03-01", "Start": "2024-03-01T08:30:00",
                "Salary": "52000", "Rate": "0.25", "Active": "TRUE", "Shift": "09:00:00"}, line=2),
        Record({"ID": "2", "Name": " Bob ", "Hired": "2020-01-02", "Start": "",
                "Salary": "1234.5", "Rate": "1e-07", "Active": "FALSE", "Shift": ""}, line=3),
    ]


def test_durations_are_read_as_hours(tmp_path: Path) -> None:
    path = write_book(tmp_path / "t.xlsx", [["who", "worked"], ["ann", timedelta(hours=30, minutes=15)]])
    assert read_all(path) == [Record({"who": "ann", "worked": "30:15:00"}, line=2)]


def test_empty_rows_are_skipped_and_line_numbers_stay_the_sheets(tmp_path: Path) -> None:
    path = write_book(tmp_path / "gaps.xlsx", [
        ["ID", "Name"], ["1", "Ann"], [None, None], ["", ""], [None, None], ["4", None], [None, "Eve"],
    ])
    # Row 4 holds empty strings: written cells, but nothing in them.
    items = read_all(path)
    assert items == [
        Record({"ID": "1", "Name": "Ann"}, line=2),
        Record({"ID": "4", "Name": ""}, line=6),
        Record({"ID": "", "Name": "Eve"}, line=7),
    ]


def test_short_rows_are_padded_and_trailing_empty_header_cells_ignored(tmp_path: Path) -> None:
    path = write_book(tmp_path / "short.xlsx", [["ID", "Name", "Mail", None, ""], ["1"], ["2", "Bob", "b@x.org"]])
    reader = ExcelReader(path)
    assert reader.columns() == ["ID", "Name", "Mail"]
    assert read_all(path) == [
        Record({"ID": "1", "Name": "", "Mail": ""}, line=2),
        Record({"ID": "2", "Name": "Bob", "Mail": "b@x.org"}, line=3),
    ]


def test_columns_and_test_describe_the_sheet(tmp_path: Path) -> None:
    path = write_book(tmp_path / "hr.xlsx", [[f"c{i}" for i in range(20)]], title="Staff")
    reader = ExcelReader(path)
    assert isinstance(reader, Source)
    assert reader.columns() == [f"c{i}" for i in range(20)]
    line = reader.test()
    assert line.startswith(f"Excel file {path}, sheet 'Staff': 20 columns (c0, c1,")
    assert line.endswith("c11, ...)")


def test_a_typed_header_is_named_by_its_text(tmp_path: Path) -> None:
    path = write_book(tmp_path / "h.xlsx", [["ID", 2024, 3.0, datetime(2024, 1, 1)], [1, 2, 3, 4]])
    assert ExcelReader(path).columns() == ["ID", "2024", "3", "2024-01-01"]


# ---------------------------------------------------------------- sheets and header rows


def test_the_first_sheet_is_read_by_default_whatever_sheet_is_active(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "First"
    first.append(["id"])
    first.append(["from-first"])
    second = book.create_sheet("Second")
    second.append(["id"])
    second.append(["from-second"])
    book.active = 1
    book.save(tmp_path / "two.xlsx")
    assert read_all(tmp_path / "two.xlsx") == [Record({"id": "from-first"}, line=2)]
    assert read_all(tmp_path / "two.xlsx", sheet="Second") == [Record({"id": "from-second"}, line=2)]
    # Excel sheet names are case-insensitive.
    assert read_all(tmp_path / "two.xlsx", sheet="second") == [Record({"id": "from-second"}, line=2)]


def test_a_sheet_that_does_not_exist_is_a_config_error_listing_the_sheets(tmp_path: Path) -> None:
    path = write_book(tmp_path / "hr.xlsx", [["id"]], title="People", others=["Leavers", "Notes"])
    with pytest.raises(ConfigError) as caught:
        ExcelReader(path, sheet="Staff").read()
    assert caught.value.message == (
        f"Excel file {path} has no sheet 'Staff'; its sheets: 'People', 'Leavers', 'Notes'"
    )
    with pytest.raises(ConfigError, match="no sheet 'Staff'"):
        ExcelReader(path, sheet="Staff").test()


def test_a_chart_sheet_is_refused(tmp_path: Path) -> None:
    path = write_book(tmp_path / "c.xlsx", [["id"], [1]])
    book = openpyxl.load_workbook(path)
    chart = BarChart()
    chart.add_data(Reference(book["People"], min_col=1, min_row=1, max_row=2), titles_from_data=True)
    book.create_chartsheet("Chart").add_chart(chart)
    book.save(path)
    with pytest.raises(ConfigError, match="sheet 'Chart' is a chart sheet"):
        ExcelReader(path, sheet="Chart").columns()


def test_rows_above_the_header_row_are_ignored(tmp_path: Path) -> None:
    path = write_book(tmp_path / "report.xlsx", [
        ["Staff report", None], ["printed 2024-03-01", None], ["ID", "Name"], [1, "Ann"],
    ])
    assert read_all(path, header_row=3) == [Record({"ID": "1", "Name": "Ann"}, line=4)]


def test_an_empty_header_row_is_a_config_error(tmp_path: Path) -> None:
    path = write_book(tmp_path / "h.xlsx", [["Title"], [None], ["ID"], [1]])
    with pytest.raises(ConfigError, match=r"sheet 'People': row 2 is empty, but it should be the header row"):
        ExcelReader(path, header_row=2).read()
    empty = write_book(tmp_path / "empty.xlsx", [])
    with pytest.raises(ConfigError, match="row 1 is empty"):
        ExcelReader(empty).columns()


def test_header_names_must_be_present_and_distinct(tmp_path: Path) -> None:
    gap = write_book(tmp_path / "gap.xlsx", [["ID", None, "Mail"]])
    with pytest.raises(ConfigError, match=r"columns without a name \(column B\)"):
        ExcelReader(gap).columns()
    dup = write_book(tmp_path / "dup.xlsx", [["ID", "Mail", "ID"]])
    with pytest.raises(ConfigError, match=r"duplicate column names in the header row \(row 1\): 'ID' \(columns A, C\)"):
        ExcelReader(dup).columns()
    err = write_book(tmp_path / "err.xlsx", [["ID", "#REF!"]])
    with pytest.raises(ConfigError, match="header cell B1 holds the error #REF!"):
        ExcelReader(err).columns()


def test_without_a_header_row_fields_name_the_columns(tmp_path: Path) -> None:
    path = write_book(tmp_path / "raw.xlsx", [[1, "Ann"], [2, "Bob"]])
    reader = ExcelReader(path, header_row=0, fields=["id", "name"])
    assert reader.columns() == ["id", "name"]
    assert list(reader.read()) == [Record({"id": "1", "name": "Ann"}, line=1), Record({"id": "2", "name": "Bob"}, line=2)]
    with pytest.raises(ConfigError, match="needs 'fields'"):
        ExcelReader(path, header_row=0)
    (error,) = list(ExcelReader(path, header_row=0, fields=["id"]).read())[:1]
    assert isinstance(error, RecordError) and error.message == (
        "row 1: cell B1 holds 'Ann' but 'fields' names only 1 columns (A to A); name column B or clear the cell"
    )


def test_fields_rename_the_header_columns(tmp_path: Path) -> None:
    path = write_book(tmp_path / "h.xlsx", [["Employee ID", "Full name"], [1, "Ann"]])
    assert read_all(path, fields=["id", "name"]) == [Record({"id": "1", "name": "Ann"}, line=2)]
    with pytest.raises(ConfigError, match="'fields' names 3 columns but the header row has 2"):
        ExcelReader(path, fields=["a", "b", "c"]).read()


def test_definitions_check_the_header_options() -> None:
    with pytest.raises(ConfigError, match=r"header_row: 0.*needs 'fields'"):
        definitions.parse("source", {"name": "x", "kind": "excel", "path": "x.xlsx", "header_row": 0})
    with pytest.raises(ConfigError, match="header_row"):
        definitions.parse("source", {"name": "x", "kind": "excel", "path": "x.xlsx", "header_row": -1})
    parsed = definitions.parse("source", {"name": "x", "kind": "excel", "path": "x.xlsx", "sheet": "Staff"})
    assert isinstance(parsed, ExcelSource) and (parsed.sheet, parsed.header_row) == ("Staff", 1)


# ---------------------------------------------------------------- bad rows


def test_an_error_cell_fails_its_row_naming_the_column_and_cell(tmp_path: Path) -> None:
    path = write_book(tmp_path / "pay.xlsx", [
        ["ID", "Name", "Dept", "Salary"],
        *[[i, f"P{i}", "IT", 1000 + i] for i in range(2, 7)],
        [6, "Zoe", "IT", "#DIV/0!"],
        [7, "Yan", "#N/A", 5],
    ])
    items = read_all(path)
    assert [r.line for r in records(items)] == [2, 3, 4, 5, 6]
    assert [(e.message, e.line) for e in errors(items)] == [
        ("row 7, column Salary (D7): the cell holds the error #DIV/0!", 7),
        ("row 8, column Dept (C8): the cell holds the error #N/A", 8),
    ]


def test_extra_cells_beyond_the_header_fail_their_row_unless_empty(tmp_path: Path) -> None:
    path = write_book(tmp_path / "wide.xlsx", [
        ["ID", "Name"], [1, "Ann", None, "note"], [2, "Bob", ""], [3, "Cy"],
    ])
    items = read_all(path)
    assert records(items) == [Record({"ID": "2", "Name": "Bob"}, line=3), Record({"ID": "3", "Name": "Cy"}, line=4)]
    (error,) = errors(items)
    assert error.line == 2
    assert error.message == (
        "row 2: cell D2 holds 'note' but the header row (row 1) names only 2 columns (A to B); "
        "name column D or clear the cell"
    )


def test_formulas_are_read_as_their_saved_values(tmp_path: Path) -> None:
    path = write_book(tmp_path / "f.xlsx", [["ID", "Total"], [1, "=1+1"], [2, "=2+2"]])
    # openpyxl saves formulas without a computed value; Excel saves both.
    rewrite_part(path, "xl/worksheets/sheet1.xml", lambda xml: xml.replace("<f>1+1</f><v />", "<f>1+1</f><v>2</v>"))
    assert read_all(path) == [
        Record({"ID": "1", "Total": "2"}, line=2),
        Record({"ID": "2", "Total": ""}, line=3),
    ]


def test_a_wrong_recorded_sheet_size_does_not_cut_rows(tmp_path: Path) -> None:
    path = write_book(tmp_path / "dim.xlsx", [["ID", "Name"], [1, "Ann"], [2, "Bob"], [3, "Cy", "extra"]])
    rewrite_part(path, "xl/worksheets/sheet1.xml", lambda xml: re.sub(r'<dimension ref="[^"]*"', '<dimension ref="A1:A2"', xml))
    items = read_all(path)
    assert [r.fields for r in records(items)] == [{"ID": "1", "Name": "Ann"}, {"ID": "2", "Name": "Bob"}]
    assert [e.line for e in errors(items)] == [4]


# ---------------------------------------------------------------- bad files


def test_a_missing_file_is_a_source_failure(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError) as caught:
        ExcelReader(tmp_path / "nope.xlsx").read()
    assert caught.value.message == f"Excel file not found: {tmp_path / 'nope.xlsx'} (check the source's path)"
    assert not isinstance(caught.value, NotFoundError)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="is a directory, not a file"):
        ExcelReader(tmp_path).columns()


@contextmanager
def unreadable(path: Path) -> Iterator[None]:
    """*path* locked against reading: mode 000, and for root (who reads any
    file) the effective user switched to nobody for the duration."""
    path.chmod(0)
    root = os.geteuid() == 0
    if root:
        os.seteuid(65534)
    try:
        yield
    finally:
        if root:
            os.seteuid(0)
        path.chmod(0o644)


def test_a_locked_file_is_a_clear_permission_error(tmp_path: Path) -> None:
    path = write_book(tmp_path / "locked.xlsx", [["id"], [1]])
    with unreadable(path), pytest.raises(ConnectorError) as caught:
        ExcelReader(path).read()
    assert caught.value.message == (
        f"Excel file {path} cannot be read: permission denied (check the file's permissions)"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty: expected an .xlsx workbook"),
        (b"id,name\n1,Ann\n", "is not an .xlsx workbook (it looks like text: use a csv source for CSV files)"),
        (b"\x00\x01\x02binary junk", "is not an .xlsx workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "is an old .xls workbook or a password-protected one"),
    ],
)
def test_files_that_are_not_workbooks_are_refused_in_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(content)
    with pytest.raises(ConnectorError) as caught:
        ExcelReader(path).read()
    assert caught.value.message.startswith(f"Excel file {path} ")
    assert expected in caught.value.message
    assert "\n" not in caught.value.message
    assert open_fds_to(path) == 0


def test_a_truncated_workbook_is_damaged(tmp_path: Path) -> None:
    path = write_book(tmp_path / "cut.xlsx", [["id"], *[[i] for i in range(100)]])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ConnectorError, match=r"is damaged: not a complete \.xlsx archive"):
        ExcelReader(path).read()
    assert open_fds_to(path) == 0


def test_a_zip_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "doc.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("content.xml", "<office/>")
    with pytest.raises(ConnectorError, match=r"is a zip archive but not an \.xlsx workbook"):
        ExcelReader(path).read()


def test_a_sheet_with_broken_xml_is_damaged(tmp_path: Path) -> None:
    path = write_book(tmp_path / "broken.xlsx", [["id"], [1], [2]])
    rewrite_part(path, "xl/worksheets/sheet1.xml", lambda xml: xml.replace("</sheetData>", "<row r=\"9\"><c"))
    with pytest.raises(ConnectorError, match=r"is damaged near row 4: ExpatError: not well-formed"):
        list(ExcelReader(path).read())
    assert open_fds_to(path) == 0


def test_close_releases_reads_not_finished(tmp_path: Path) -> None:
    path = write_book(tmp_path / "hr.xlsx", [["id"], *[[i] for i in range(10)]])
    reader = ExcelReader(path)
    first = reader.read()
    assert next(first) == Record({"id": "0"}, line=2)
    reader.read()
    assert open_fds_to(path) == 2
    reader.close()
    assert open_fds_to(path) == 0


# ---------------------------------------------------------------- registry and definitions


def test_the_factory_resolves_relative_paths_under_the_home(tmp_home: Path) -> None:
    write_book(tmp_home / "hr.xlsx", [["id"], [1]], title="Staff")
    definition = definitions.parse("source", {"name": "hr", "kind": "excel", "path": "hr.xlsx", "sheet": "Staff"})
    reader = factory_for("excel")(definition, {})
    assert reader is not None and reader.path == tmp_home / "hr.xlsx"
    assert list(reader.read()) == [Record({"id": "1"}, line=2)]
    assert open_excel_source(definition, {}).sheet == "Staff"


# ---------------------------------------------------------------- a real sync job


@pytest.fixture
def ws(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    return Workspace(principal=Principal("tester"))


def local_store_with_people_ou(ws: Workspace, path: Path) -> None:
    from idsync.connectors.local import LocalDirectory

    with LocalDirectory(path, SUFFIX) as directory:
        ou = Change(ChangeOp.CREATE, f"ou=People,{SUFFIX}", attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": ["People"]}))
        assert all(o.error is None for o in directory.apply([ou]))
    definitions.save(ws, "store", definitions.parse("store", {"name": "dir", "kind": "local", "path": str(path)}))


def test_a_sync_job_from_an_excel_sheet_into_the_embedded_directory(ws: Workspace, tmp_path: Path) -> None:
    from idsync.connectors.local import LocalDirectory

    book = write_book(tmp_path / "hr.xlsx", [
        ["Employee", "First", "Last", "Hired", "Salary"],
        [1001, "Ann", "Lee", datetime(2021, 4, 1), 52000.0],
        [1002.0, "Bob", "Stone", datetime(2022, 5, 2), "#VALUE!"],
        [None, None, None, None, None],
        [1003, "Cy", "Ng", datetime(2023, 6, 3), 61000.5],
    ], title="Staff", others=["Notes"])
    dirpath = tmp_path / "dir.db"
    local_store_with_people_ou(ws, dirpath)
    definitions.save(ws, "source", definitions.parse("source", {"name": "hr", "kind": "excel", "path": str(book), "sheet": "Staff"}))
    jobs.save_job(ws, definitions.parse("job", {
        "name": "people", "source": "hr",
        "destination": {"store": "dir", "container": f"ou=People,{SUFFIX}"},
        "mappings": [
            {"attribute": "uid", "from": "Employee", "key": True},
            {"attribute": "cn", "join": {"fields": ["First", "Last"]}},
            {"attribute": "sn", "from": "Last"},
            {"attribute": "description", "join": {"fields": ["Hired", "Salary"], "separator": " / "}},
        ],
    }))
    run = jobs.run_job(ws, "people")
    assert run.state is RunState.COMPLETED_WITH_ERRORS, run.error
    assert (run.counts.created, run.counts.errors) == (2, 1)
    with LocalDirectory(dirpath, SUFFIX) as directory:
        found = {e.dn: e.attrs for e in directory.search(f"ou=People,{SUFFIX}", filterstr="(objectClass=inetOrgPerson)")}
    assert set(found) == {f"uid=1001,ou=People,{SUFFIX}", f"uid=1003,ou=People,{SUFFIX}"}
    assert found[f"uid=1001,ou=People,{SUFFIX}"].get_values("description") == ("2021-04-01 / 52000",)
    assert found[f"uid=1003,ou=People,{SUFFIX}"].get_values("cn") == ("Cy Ng",)
    again = jobs.run_job(ws, "people")
    assert (again.counts.unchanged, again.counts.changed, again.counts.created) == (2, 0, 0)
