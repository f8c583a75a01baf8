"""The CSV/TSV data source, against real files written in tmp_path."""

from __future__ import annotations

import csv
import io
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idsync.connectors.base import Source, factory_for
from idsync.connectors.csv import CsvReader, open_csv_source
from idsync.domain.definitions import CsvSource
from idsync.domain.entry import Record
from idsync.errors import ConfigError, ConnectorError, NotFoundError, RecordError
from tests.files import open_fds_to
from tests.memory import LARGE, SMALL, drain, traced_peak

HEADER = "EmployeeID,First,Last,Mail,Dept,Title,Phone,Manager"


def write(tmp_path: Path, data: bytes | str, name: str = "hr.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def read_all(path: Path, **options: object) -> list[Record | RecordError]:
    return list(CsvReader(path, **options).read())  # type: ignore[arg-type]


def records(items: list[Record | RecordError]) -> list[Record]:
    return [i for i in items if isinstance(i, Record)]


def errors(items: list[Record | RecordError]) -> list[RecordError]:
    return [i for i in items if isinstance(i, RecordError)]


# ---------------------------------------------------------------- reading


def test_reads_fields_exactly_with_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "ID,First,Last\n1,Ann, Lee \n2,,Müller\n")
    items = read_all(path)
    assert items == [
        Record({"ID": "1", "First": "Ann", "Last": " Lee "}, line=2),
        Record({"ID": "2", "First": "", "Last": "Müller"}, line=3),
    ]


def test_columns_and_test_describe_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "\n1,a,b,c,d,e,f,g\n")
    reader = CsvReader(path)
    assert reader.columns() == HEADER.split(",")
    assert reader.test() == f"CSV file {path}: 8 columns ({HEADER.replace(',', ', ')})"
    assert isinstance(reader, Source)


def test_test_shortens_a_long_column_list(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(20)]
    path = write(tmp_path, ",".join(names) + "\n")
    description = CsvReader(path).test()
    assert description.startswith(f"CSV file {path}: 20 columns (c0, c1,")
    assert description.endswith("c11, ...)")


def test_blank_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path, "\n\nID,Name\n\n1,a\n\n\n2,b\n")
    items = read_all(path)
    assert [(r.fields["ID"], r.line) for r in records(items)] == [("1", 5), ("2", 8)]
    assert errors(items) == []


def test_quoted_fields_spanning_lines_keep_the_start_line(tmp_path: Path) -> None:
    text = (
        'ID,Note,Name\r\n'
        '1,"first\r\nsecond\r\nthird",Ann\r\n'
        '2,"a ""quoted"" word, and a comma",Bob\r\n'
        '3,"x\ny",Cy\r\n'
        '4,plain,Dee\r\n'
    )
    items = read_all(write(tmp_path, text))
    assert [(r.line, r.fields["Note"]) for r in records(items)] == [
        (2, "first\r\nsecond\r\nthird"),
        (5, 'a "quoted" word, and a comma'),
        (6, "x\ny"),
        (8, "plain"),
    ]


def test_old_mac_line_endings(tmp_path: Path) -> None:
    items = read_all(write(tmp_path, 'a,b\r1,2\r\r5,"6\r7"\r8,9'))
    assert [(r.line, r.fields["b"]) for r in records(items)] == [(2, "2"), (4, "6\r7"), (6, "9")]


def test_last_line_without_newline(tmp_path: Path) -> None:
    items = read_all(write(tmp_path, "a,b\n1,2\n3,4"))
    assert [r.fields for r in records(items)] == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


@pytest.mark.parametrize(
    ("delimiter", "sep"),
    [("\t", "\t"), (";", ";"), ("|", "|")],
)
def test_other_delimiters(tmp_path: Path, delimiter: str, sep: str) -> None:
    text = sep.join(["ID", "Name", "Note"]) + "\n" + sep.join(["1", "Ann, Lee", '"x' + sep + 'y"']) + "\n"
    items = read_all(write(tmp_path, text, "hr.tsv"), delimiter=delimiter)
    assert items == [Record({"ID": "1", "Name": "Ann, Lee", "Note": "x" + sep + "y"}, line=2)]


def test_other_quote_character(tmp_path: Path) -> None:
    items = read_all(write(tmp_path, "a,b\n'x,y',2\n"), quotechar="'")
    assert items == [Record({"a": "x,y", "b": "2"}, line=2)]


# ---------------------------------------------------------------- encodings


def test_utf8_byte_order_mark_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    path = write(tmp_path, "ID,Name\n1,Zoë\n", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    for encoding in ("utf-8", "utf-8-sig", "UTF8"):
        reader = CsvReader(path, encoding=encoding)
        assert reader.columns() == ["ID", "Name"]
        assert list(reader.read()) == [Record({"ID": "1", "Name": "Zoë"}, line=2)]


@pytest.mark.parametrize(
    ("encoding", "name"),
    [("latin-1", "Renée Ørsted"), ("cp1252", "Zoë “quoted” €5"), ("utf-16", "Zoë 日本"), ("utf-8", "日本 Ünïcödé")],
)
def test_encodings(tmp_path: Path, encoding: str, name: str) -> None:
    path = write(tmp_path, f"ID,Name\n1,{name}\n", encoding=encoding)
    items = read_all(path, encoding=encoding)
    assert items == [Record({"ID": "1", "Name": name}, line=2)]


def test_bytes_not_valid_utf8_fail_that_row_only(tmp_path: Path) -> None:
    data = b"ID,First,Last\n1,Ann,Lee\n2,Ren\xe9,Dupont\n3,Bob,Ren\xc3\xa9\n"
    items = read_all(write(tmp_path, data))
    assert [r.fields["ID"] for r in records(items)] == ["1", "3"]
    assert records(items)[1].fields["Last"] == "René"
    (err,) = errors(items)
    assert err.line == 3
    assert err.attribute is None
    assert err.message.startswith("line 3: bytes not valid utf-8 in field 'First' (Ren\\xe9)")
    assert "encoding" in err.message


def test_undefined_cp1252_byte_is_a_record_error(tmp_path: Path) -> None:
    items = read_all(write(tmp_path, b"a,b\n1,\x81x\n2,\x80\n"), encoding="cp1252")
    assert records(items) == [Record({"a": "2", "b": "€"}, line=3)]
    assert [e.message.split(";")[0] for e in errors(items)] == [
        "line 2: bytes not valid cp1252 in field 'b' (\\x81x)"
    ]


def test_truncated_utf16_file_is_a_record_error(tmp_path: Path) -> None:
    data = "a,b\n1,é\n2,3".encode("utf-16") + b"\x00"
    items = read_all(write(tmp_path, data), encoding="utf-16")
    assert records(items) == [Record({"a": "1", "b": "é"}, line=2)]
    (err,) = errors(items)
    assert err.line == 3 and "bytes not valid utf-16 in field 'b'" in err.message


def test_nul_byte_is_a_record_error(tmp_path: Path) -> None:
    items = read_all(write(tmp_path, b"a,b\n1,x\x00y\n2,ok\n"))
    assert records(items) == [Record({"a": "2", "b": "ok"}, line=3)]
    (err,) = errors(items)
    assert err.line == 2
    assert err.message.startswith("line 2: NUL byte in field 'b'")


def test_utf16_file_read_as_utf8_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b\n1,2\n", encoding="utf-16")
    with pytest.raises(ConfigError, match=r"NUL bytes.*utf-16"):
        CsvReader(path).read()


def test_bad_bytes_in_the_header_are_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, b"ID,Pr\xe9nom\n1,x\n")
    with pytest.raises(ConfigError, match=r"header has bytes not valid utf-8 in column 2 \(Pr\\xe9nom\)"):
        CsvReader(path).columns()


# ---------------------------------------------------------------- malformed rows


def test_wrong_number_of_fields(tmp_path: Path) -> None:
    text = HEADER + "\n" + "1,a,b,c,d,e,f,g\n" + "2,a,b,c,d,e,f,g,EXTRA\n" + "3,a\n" + "4,a,b,c,d,e,f,g\n"
    items = read_all(write(tmp_path, text))
    assert [type(i).__name__ for i in items] == ["Record", "RecordError", "RecordError", "Record"]
    too_many, too_few = errors(items)
    assert too_many.message == "line 3: expected 8 fields, found 9"
    assert too_many.line == 3
    assert too_few.message == "line 4: expected 8 fields, found 2"
    assert records(items)[1].line == 5


def test_unterminated_quote_at_end_of_file(tmp_path: Path) -> None:
    items = read_all(write(tmp_path, 'a,b\n1,2\n"3,4\n5,6\n'))
    assert records(items) == [Record({"a": "1", "b": "2"}, line=2)]
    (err,) = errors(items)
    assert err.line == 3
    assert err.message == (
        "line 3: a quoted field is not closed before the end of the file (a missing closing quote)"
    )


def test_text_after_closing_quote_fails_that_row_only(tmp_path: Path) -> None:
    items = read_all(write(tmp_path, 'a,b\n1,2\n3,"4"x\n5,6\n'))
    assert [r.fields["a"] for r in records(items)] == ["1", "5"]
    (err,) = errors(items)
    assert err.line == 3 and "text after the closing quote" in err.message


def test_record_errors_after_multiline_rows_have_the_right_line(tmp_path: Path) -> None:
    items = read_all(write(tmp_path, 'a,b\n1,"x\ny\nz"\n2,3,4\n'))
    assert records(items) == [Record({"a": "1", "b": "x\ny\nz"}, line=2)]
    assert errors(items)[0].line == 5


# ---------------------------------------------------------------- rows longer than the field limit


@pytest.fixture
def field_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """IDSYNC_CSV_FIELD_LIMIT set low: 64 Ki characters (rows up to twice that)."""
    monkeypatch.setenv("IDSYNC_CSV_FIELD_LIMIT", str(64 * 1024))
    return 64 * 1024


def test_a_field_longer_than_the_limit_fails_its_row_only(tmp_path: Path, field_limit: int) -> None:
    long = "x" * (field_limit + 10)
    items = read_all(write(tmp_path, f"a,b\n1,ok\n2,{long}\n3,{'y' * field_limit}\n"))
    assert records(items) == [Record({"a": "1", "b": "ok"}, line=2), Record({"a": "3", "b": "y" * field_limit}, line=4)]
    (err,) = errors(items)
    assert err.line == 3 and "a field is longer than 65,536 characters" in err.message


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r", ""])
def test_a_line_longer_than_twice_the_limit_is_skipped_to_its_end(
    tmp_path: Path, field_limit: int, ending: str
) -> None:
    # Short fields, so only the length of the row stops it: the csv module
    # alone would hold the whole line and a list of a million fields.
    long = "2," + ",".join(["x"] * 1_000_000)
    text = f"a,b{ending or chr(10)}1,ok{ending or chr(10)}{long}{ending}" + (f"3,fine{ending}" if ending else "")
    items = read_all(write(tmp_path, text))
    assert [type(i).__name__ for i in items] == ["Record", "RecordError"] + (["Record"] if ending else [])
    err = errors(items)[0]
    assert err.line == 3
    assert err.message == (
        "line 3: the row is longer than 131,072 characters (twice IDSYNC_CSV_FIELD_LIMIT) and was skipped "
        "(a missing closing quote? or raise IDSYNC_CSV_FIELD_LIMIT)"
    )
    if ending:
        assert records(items)[-1] == Record({"a": "3", "b": "fine"}, line=4)


def test_a_crlf_cut_in_two_by_the_limit_ends_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_CSV_FIELD_LIMIT", "4")  # rows of up to 8 characters
    items = read_all(write(tmp_path, "a,b\r\n1,ok\r\n2,abcdef\r\n3,c\r\n"))
    assert [(type(i).__name__, i.line) for i in items] == [("Record", 2), ("RecordError", 3), ("Record", 4)]


def test_a_row_over_many_lines_is_bounded_too(tmp_path: Path, field_limit: int) -> None:
    # Each line short, each field short, but one row without end: quoted line breaks.
    text = "a,b\n1,ok\n2," + '"x\n",' * 100_000 + '"end"\n'
    items = read_all(write(tmp_path, text))
    assert items[0] == Record({"a": "1", "b": "ok"}, line=2)
    assert isinstance(items[1], RecordError) and items[1].line == 3 and "the row is longer than" in items[1].message


def test_a_header_longer_than_twice_the_limit_is_a_config_error(tmp_path: Path, field_limit: int) -> None:
    path = write(tmp_path, ",".join(f"c{i}" for i in range(100_000)) + "\n1\n")
    with pytest.raises(ConfigError, match="the header row cannot be read: the row is longer than 131,072 characters"):
        CsvReader(path).read()


@pytest.mark.parametrize("ending", ["\n", ""])
def test_a_long_line_is_never_held_whole(tmp_path: Path, field_limit: int, ending: str) -> None:
    # 16 MB on one line against a limit of 64 Ki characters: what is held
    # stays near the limit (seen: ~0.6 MB), not near the line (16 MB and more).
    path = write(tmp_path, "a,b\n1,ok\n2," + "x" * (16 << 20) + (ending + "3,fine\n" if ending else ""))
    peak, (count, last) = traced_peak(lambda: drain(CsvReader(path).read()))
    assert (count, type(last), last.line if last else None) == (
        (3, Record, 4) if ending else (2, RecordError, 3)
    )
    assert peak < 2 << 20, f"peak {peak:,} bytes reading a line of 16 MB"


def test_a_line_of_many_short_fields_is_never_held_whole(tmp_path: Path, field_limit: int) -> None:
    path = write(tmp_path, "a,b\n2," + ",".join(["x"] * 2_000_000) + "\n")
    peak, (count, last) = traced_peak(lambda: drain(CsvReader(path).read()))
    assert count == 1 and isinstance(last, RecordError)
    assert peak < 2 << 20, f"peak {peak:,} bytes reading a line of 2,000,000 fields"


# ---------------------------------------------------------------- source-level problems


def test_missing_file_is_a_failure_of_the_source_not_a_missing_object(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    reader = CsvReader(path)
    with pytest.raises(ConnectorError) as info:
        reader.read()
    assert info.value.message == f"CSV file not found: {path} (check the source's path)"
    assert not isinstance(info.value, NotFoundError)
    with pytest.raises(ConnectorError):
        reader.test()


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="is a directory"):
        CsvReader(tmp_path).read()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file whatever its mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a\n1\n")
    path.chmod(0)
    with pytest.raises(ConnectorError) as info:
        CsvReader(path).test()
    assert info.value.message == (
        f"CSV file {path} cannot be read: permission denied (check the file's permissions)"
    )


@pytest.mark.parametrize("content", [b"", b"\n\n\r\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ConfigError, match="is empty: expected a header row"):
        CsvReader(path).read()


def test_empty_file_without_header_has_no_records(tmp_path: Path) -> None:
    path = write(tmp_path, b"")
    assert read_all(path, header=False, fields=["a"]) == []


def test_duplicate_column_names(tmp_path: Path) -> None:
    path = write(tmp_path, "ID,Mail,Name,Mail,ID\n")
    with pytest.raises(ConfigError) as info:
        CsvReader(path).columns()
    assert "duplicate column names in the header: 'ID' (columns 1, 5); 'Mail' (columns 2, 4)" in info.value.message


def test_empty_column_names(tmp_path: Path) -> None:
    path = write(tmp_path, "ID,,Name, \n")
    with pytest.raises(ConfigError, match=r"columns without a name \(column 2, 4\)"):
        CsvReader(path).read()


def test_unreadable_header_row(tmp_path: Path) -> None:
    path = write(tmp_path, '"ID,Name\n')
    with pytest.raises(ConfigError, match="header row cannot be read: a quoted field is not closed"):
        CsvReader(path).columns()


# ---------------------------------------------------------------- options


def test_without_header_fields_name_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "1,Ann\n2,Bob,extra\n")
    reader = CsvReader(path, header=False, fields=["ID", "Name"])
    assert reader.columns() == ["ID", "Name"]
    items = list(reader.read())
    assert items[0] == Record({"ID": "1", "Name": "Ann"}, line=1)
    assert isinstance(items[1], RecordError) and items[1].message == "line 2: expected 2 fields, found 3"
    assert reader.test() == f"CSV file {path}: 2 columns (ID, Name)"


def test_with_header_fields_rename_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "Employee Number,Given Name\n1,Ann\n")
    assert read_all(path, fields=["ID", "First"]) == [Record({"ID": "1", "First": "Ann"}, line=2)]
    with pytest.raises(ConfigError, match="'fields' names 3 columns but the header has 2"):
        CsvReader(path, fields=["a", "b", "c"]).read()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delimiter": ",,"}, "delimiter must be one character"),
        ({"delimiter": "\n"}, "delimiter must be one character"),
        ({"quotechar": ","}, "quote character must be one character, not the delimiter"),
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"header": False}, "needs 'fields'"),
        ({"header": False, "fields": ["a", "a"]}, "duplicate column names in 'fields'"),
    ],
)
def test_bad_options(tmp_path: Path, options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CsvReader(tmp_path / "x.csv", **options)  # type: ignore[arg-type]


def test_factory_resolves_relative_paths_under_home(tmp_home: Path) -> None:
    (tmp_home / "feeds").mkdir()
    (tmp_home / "feeds" / "hr.tsv").write_text("ID\tName\n1\tAnn\n", encoding="latin-1")
    definition = CsvSource.model_validate(
        {"name": "hr", "kind": "csv", "path": "feeds/hr.tsv", "delimiter": "tab", "encoding": "latin-1"}
    )
    factory = factory_for("csv")
    assert factory is open_csv_source
    reader = factory(definition, {})
    assert isinstance(reader, CsvReader)
    assert reader.path == tmp_home / "feeds" / "hr.tsv"
    assert list(reader.read()) == [Record({"ID": "1", "Name": "Ann"}, line=2)]


def test_factory_keeps_absolute_paths(tmp_home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "a\n1\n")
    definition = CsvSource(name="hr", kind="csv", path=str(path))
    assert open_csv_source(definition, {}).path == path


# ---------------------------------------------------------------- resources


def test_files_are_closed_after_reading_and_on_close(tmp_path: Path) -> None:
    path = write(tmp_path, "a\n" + "x\n" * 10)
    reader = CsvReader(path)
    list(reader.read())
    reader.test()
    assert open_fds_to(path) == 0
    iterator = reader.read()
    next(iterator)
    assert open_fds_to(path) == 1
    reader.close()
    assert open_fds_to(path) == 0


def test_header_errors_do_not_leak_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a,a\n")
    with pytest.raises(ConfigError):
        CsvReader(path).read()
    assert open_fds_to(path) == 0


def _big_file(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / f"big-{rows}.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        for i in range(rows):
            out.write(f"E{i:06d},John,Smith,john.smith{i}@example.org,Sales,Engineer,+1 555 0100,E{i // 10:06d}\n")
    return path


def test_a_large_file_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    small, large = _big_file(tmp_path, SMALL), _big_file(tmp_path, LARGE)
    traced_peak(lambda: drain(CsvReader(small).read()))  # first use: caches, compiled patterns
    small_peak, _ = traced_peak(lambda: drain(CsvReader(small).read()))
    large_peak, (count, last) = traced_peak(lambda: drain(CsvReader(large).read()))
    assert count == LARGE
    assert isinstance(last, Record) and last.line == LARGE + 1 and last.fields["EmployeeID"] == f"E{LARGE - 1:06d}"
    # 6,000 more rows (~400 KB more file) add nothing to the peak; holding
    # the records would add ~800 bytes each. (Differences seen: under 1 KB.)
    growth = large_peak - small_peak
    assert growth < 10 * (LARGE - SMALL), f"peak {large_peak:,} bytes for {LARGE:,} rows, {small_peak:,} for {SMALL:,}"


@pytest.mark.timing
def test_throughput_is_in_the_expected_range(tmp_path: Path) -> None:
    # The target is 200,000 rows/s on the development machines; the bound here
    # is loose so a busy CI machine does not fail, but a quadratic slip would.
    path = _big_file(tmp_path, 100_000)
    reader = CsvReader(path)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        count = sum(1 for _ in reader.read())
        best = min(best, time.perf_counter() - started)
    assert count == 100_000
    assert count / best > 50_000


# ---------------------------------------------------------------- round trip


cell = st.text(alphabet=st.sampled_from(list('ab ,;"\'\n\r\tÉé日€')), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.integers(min_value=1, max_value=4).flatmap(
        lambda n: st.lists(st.lists(cell, min_size=n, max_size=n), max_size=8)
    ),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_what_csv_writer_writes_reads_back_with_line_numbers(
    tmp_path: Path, rows: list[list[str]], delimiter: str
) -> None:
    width = len(rows[0]) if rows else 1
    names = [f"c{i}" for i in range(width)]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(names)
    starts = []
    for row in rows:
        starts.append(len(re.findall(r"\r\n|\r|\n", buffer.getvalue())) + 1)
        writer.writerow(row)  # a row of one empty cell is written as "" (not a blank line)
    path = write(tmp_path, buffer.getvalue(), "roundtrip.csv")
    expected = [
        Record(dict(zip(names, row, strict=True)), line=start)
        for row, start in zip(rows, starts, strict=True)
    ]
    assert read_all(path, delimiter=delimiter) == expected
