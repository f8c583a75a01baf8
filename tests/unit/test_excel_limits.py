"""Workbooks made to exhaust memory: long cells, huge parts, zip bombs.

Each workbook is written part by part (tests/xlsx.py), the long texts in
pieces, with the limits set low through their settings; memory is measured
with tracemalloc, which sees every allocation of the XML parser and of the
zip decompressor.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from openpyxl.reader.strings import read_string_table

from idsync.connectors.excel import ExcelReader
from idsync.domain.entry import Record
from idsync.errors import ConfigError, ConnectorError, RecordError
from tests.memory import drain, traced_peak
from tests.xlsx import MAIN, SHEET, Big, write_xlsx

LIMIT = 64 * 1024


@pytest.fixture(autouse=True)
def cell_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("IDSYNC_EXCEL_CELL_LIMIT", str(LIMIT))
    return LIMIT


def read_all(path: Path) -> list[Record | RecordError]:
    return list(ExcelReader(path).read())


def lines(items: list[Record | RecordError]) -> list[tuple[str, int | None]]:
    return [(type(i).__name__, i.line) for i in items]


# ---------------------------------------------------------------- cells over the limit


@pytest.mark.parametrize("shared", [False, True], ids=["inline", "shared"])
def test_a_cell_longer_than_the_limit_fails_its_row_only(tmp_path: Path, shared: bool) -> None:
    rows = [["ID", "Name", "Members"], [1, "Ann", "a"], [2, "Bob", Big(LIMIT + 1)], [3, "Cy", Big(LIMIT, "c")]]
    items = read_all(write_xlsx(tmp_path / "long.xlsx", rows, shared=shared))
    assert lines(items) == [("Record", 2), ("RecordError", 3), ("Record", 4)]
    assert items[1].message == (  # type: ignore[union-attr]
        "row 3, column Members (C3): the cell holds 65,537 characters, more than the 65,536 allowed "
        "(IDSYNC_EXCEL_CELL_LIMIT)"
    )
    assert items[2] == Record({"ID": "3", "Name": "Cy", "Members": "c" * LIMIT}, line=4)


def test_a_shared_string_over_the_limit_fails_every_row_using_it(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "shared.xlsx", [["ID", "Name"], [1, "Ann"], [2, "x"], [3, "x"]], shared=True)
    with zipfile.ZipFile(path) as old:
        parts = {name: old.read(name) for name in old.namelist()}
    parts[SHEET] = parts[SHEET].replace(b"<v>4</v>", b"<v>3</v>")  # row 4 uses row 3's string
    parts["xl/sharedStrings.xml"] = parts["xl/sharedStrings.xml"].replace(
        b"<si><t>x</t></si>", b"<si><t>" + b"x" * (LIMIT + 5) + b"</t></si>", 1
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for name, data in parts.items():
            new.writestr(name, data)
    items = read_all(path)
    assert lines(items) == [("Record", 2), ("RecordError", 3), ("RecordError", 4)]
    assert "row 4, column Name (B4): the cell holds 65,541 characters" in items[2].message  # type: ignore[union-attr]


def test_cells_under_the_limit_adding_up_past_twice_it_fail_their_row(tmp_path: Path) -> None:
    rows = [["A", "B", "C"], [Big(LIMIT), Big(LIMIT), Big(LIMIT)], ["1", "2", "3"]]
    items = read_all(write_xlsx(tmp_path / "wide.xlsx", rows))
    assert lines(items) == [("RecordError", 2), ("Record", 3)]
    assert items[0].message == (  # type: ignore[union-attr]
        "row 2: its cells hold more than 131,072 characters in all (twice IDSYNC_EXCEL_CELL_LIMIT); "
        "the row is skipped"
    )


def test_a_row_of_more_elements_than_a_full_row_needs_is_skipped(tmp_path: Path) -> None:
    flood = '<row r="2">' + "<c/>" * 200_000 + "</row>"
    items = read_all(write_xlsx(tmp_path / "flood.xlsx", [["A"], [], ["ok"]], raw_rows={2: flood}))
    assert lines(items) == [("RecordError", 2), ("Record", 3)]
    assert "row 2: it has more than 131,072 XML elements" in items[0].message  # type: ignore[union-attr]


def test_a_header_cell_over_the_limit_is_a_config_error(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "header.xlsx", [["ID", Big(LIMIT + 1)], [1, "a"]])
    with pytest.raises(ConfigError, match=r"the header row \(row 1\) cannot be read: the cell holds 65,537 characters"):
        ExcelReader(path).read()


@pytest.mark.parametrize("shared", [False, True], ids=["inline", "shared"])
def test_a_long_cell_is_never_held_whole(tmp_path: Path, shared: bool) -> None:
    # 16 MB in one cell against a limit of 64 Ki characters: memory stays
    # near the limit (seen: ~0.25 MB), not near the cell (openpyxl's parser
    # holds it whole, and more than once: ~34 MB).
    drain(ExcelReader(write_xlsx(tmp_path / "small.xlsx", [["ID"], [1]], shared=shared)).read())  # first use: imports
    path = write_xlsx(tmp_path / "big.xlsx", [["ID", "Members"], [1, Big(16 << 20)], [2, "b"]], shared=shared)
    peak, (count, last) = traced_peak(lambda: drain(ExcelReader(path).read()))
    assert (count, last) == (2, Record({"ID": "2", "Members": "b"}, line=3))
    assert peak < 3 << 20, f"peak {peak:,} bytes reading a cell of 16 MB"


# ---------------------------------------------------------------- parts too large once decompressed


def test_a_sheet_decompressing_past_its_limit_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_EXCEL_SHEET_LIMIT", str(1 << 20))
    path = write_xlsx(tmp_path / "bomb.xlsx", [["ID"], *([i] for i in range(1, 100_000))])
    assert path.stat().st_size < 1 << 20  # a few hundred KB on disk
    reader = ExcelReader(path)
    with pytest.raises(ConnectorError) as info:
        reader.test()
    assert info.value.message.startswith(
        f"Excel file {path}: its part xl/worksheets/sheet1.xml decompresses to "
    )
    assert "more than the 1,048,576 allowed (IDSYNC_EXCEL_SHEET_LIMIT)" in info.value.message
    assert info.value.hint == "if the workbook is genuine, raise IDSYNC_EXCEL_SHEET_LIMIT"


@pytest.mark.parametrize("part", ["xl/styles.xml", "xl/sharedStrings.xml", "docProps/custom.xml"])
def test_another_part_decompressing_past_its_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: str
) -> None:
    # Those parts are read whole (or kept, for the shared strings) when the workbook opens.
    monkeypatch.setenv("IDSYNC_EXCEL_PART_LIMIT", str(1 << 20))
    padding = b"<!--" + b" " * (4 << 20) + b"-->"
    path = write_xlsx(tmp_path / "bomb.xlsx", [["ID"], [1]], parts={part: padding + f'<x xmlns="{MAIN}"/>'.encode()})
    with pytest.raises(ConnectorError, match=rf"its part {part} decompresses to 4,194,\d+ bytes, more than the 1,048,576 allowed \(IDSYNC_EXCEL_PART_LIMIT\)"):
        ExcelReader(path).read()


# ---------------------------------------------------------------- what expat would buffer


def test_a_tag_longer_than_a_megabyte_is_damage(tmp_path: Path) -> None:
    row = f'<row r="2"><c r="A2" t="inlineStr" x="{"y" * (2 << 20)}"><is><t>a</t></is></c></row>'
    reader = ExcelReader(write_xlsx(tmp_path / "tag.xlsx", [["A"], [], ["b"]], raw_rows={2: row}))
    with pytest.raises(ConnectorError, match=r"is damaged near row 2: ValueError: an XML tag, comment or attribute is longer than 1,048,576 bytes"):
        drain(reader.read())


def test_elements_nested_too_deep_are_damage(tmp_path: Path) -> None:
    row = '<row r="2"><c r="A2">' + "<x>" * 1000 + "</x>" * 1000 + "</c></row>"
    reader = ExcelReader(write_xlsx(tmp_path / "deep.xlsx", [["A"], [], ["b"]], raw_rows={2: row}))
    with pytest.raises(ConnectorError, match="XML elements nested more than 256 deep"):
        drain(reader.read())


# ---------------------------------------------------------------- the shared-string table


STRINGS = (
    f'<sst xmlns="{MAIN}">'
    "<si><t>plain</t></si>"
    '<si><t xml:space="preserve">  spaced  </t></si>'
    "<si><t/></si>"
    "<si></si>"
    "<si><r><t>bold</t></r><r><rPr><b/></rPr><t xml:space=\"preserve\"> and not</t></r></si>"
    "<si><t>base</t><rPh sb=\"0\" eb=\"1\"><t>phonetic</t></rPh><phoneticPr fontId=\"1\"/></si>"
    "<si><r><t>run</t></r><r><rPr/></r></si>"
    "<si><t>&lt;&amp;&gt; ✓ 日本</t></si>"
    "<si><t>_x005F_x000D_ escaped</t></si>"
    "<si><t>line\nbreak</t></si>"
    "</sst>"
).encode()


def test_the_shared_strings_are_read_as_openpyxl_reads_them() -> None:
    from idsync.connectors.excel_xml import read_shared_strings

    table = read_shared_strings(io.BytesIO(STRINGS), LIMIT)
    assert [table[i] for i in range(len(table))] == read_string_table(io.BytesIO(STRINGS))
    assert table[-1] == "line\nbreak"
    with pytest.raises(IndexError):
        table[len(table)]


def test_a_shared_string_over_the_limit_is_kept_as_its_length() -> None:
    from idsync.connectors.excel_xml import SharedStrings, TooLong, read_shared_strings

    xml = f'<sst xmlns="{MAIN}"><si><t>a</t></si><si><r><t>{"b" * 10}</t></r><r><t>{"c" * 10}</t></r></si><si><t>d</t></si></sst>'
    table = read_shared_strings(io.BytesIO(xml.encode()), 15)
    assert [table[0], table[1], table[2]] == ["a", TooLong(20), "d"]
    assert isinstance(table, SharedStrings) and table.has_too_long
