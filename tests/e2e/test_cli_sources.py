"""Data sources through the ``idsync`` command: Excel and SQL sources added,
shown and tested as a user does (the readers themselves: tests/unit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import Cli
from tests.unit.test_excel_source import write_book
from tests.unit.test_sql_source import make_db, url_of


def test_the_cli_adds_and_tests_an_excel_source(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    book = write_book(tmp_path / "hr.xlsx", [["Report"], ["id", "name"], [1, "Ann"]], title="People", others=["Other"])
    cli("source", "add", "hr", "--kind", "excel", "--path", str(book), "--sheet", "People", "--header-row", "2")
    assert cli("source", "test", "hr").stdout.strip() == f"Excel file {book}, sheet 'People': 2 columns (id, name)"
    shown = cli.json("source", "show", "hr")
    assert shown == {"name": "hr", "kind": "excel", "path": str(book), "sheet": "People", "header_row": 2}
    cli("source", "add", "bad", "--kind", "excel", "--path", str(book), "--sheet", "Staff")
    failed = cli("source", "test", "bad", ok=False)
    assert failed.returncode == 1
    assert failed.stderr.strip() == f"idsync: error: Excel file {book} has no sheet 'Staff'; its sheets: 'People', 'Other'"


def test_the_cli_adds_a_sqlite_source_relative_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = Cli(tmp_path / "home")
    make_db(tmp_path / "hr.db")
    with monkeypatch.context() as here:
        here.chdir(tmp_path)
        cli("source", "add", "hr", "--kind", "sql", "--url", "sqlite:///hr.db", "--table", "people")
    assert cli.json("source", "show", "hr") == {
        "name": "hr", "kind": "sql", "url": f"sqlite:///{tmp_path / 'hr.db'}", "table": "people",
    }
    assert "8 columns (id, first, last, mail" in cli("source", "test", "hr").stdout
    listed = cli.json("source", "list")
    assert [(s["name"], s["kind"]) for s in listed] == [("hr", "sql")]
    bad = cli("source", "add", "q", "--kind", "sql", "--url", url_of(tmp_path / "hr.db"), "--query", "DELETE FROM people", ok=False)
    assert bad.returncode == 1
    assert bad.stderr.startswith("idsync: error: data source 'q':")
    assert "the query starts with 'DELETE'" in bad.stderr and bad.stderr.count("\n") == 1
    assert [s["name"] for s in cli.json("source", "list")] == ["hr"]
