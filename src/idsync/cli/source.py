"""``idsync source``: data sources (CSV/TSV files, Excel sheets, database tables and queries)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from idsync.cli.common import (
    confirm,
    print_document,
    print_test_result,
    read_secret,
    refuse_options_of_other_kinds,
    workspace,
)
from idsync.cli.output import FormatOption, JsonOption, console, print_json, table
from idsync.services import connections, definitions, validation

app = typer.Typer(help="Data sources: where identity data comes from.", no_args_is_help=True)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Name of the source."),
    kind: str = typer.Option("csv", "--kind", help="Kind of source: csv, excel or sql."),
    path: Path | None = typer.Option(None, "--path", help="The file (csv, excel)."),
    delimiter: str | None = typer.Option(None, help="Field delimiter; 'tab' for TSV (csv; default ,)."),
    quotechar: str | None = typer.Option(None, help='Quote character (csv; default ").'),
    encoding: str | None = typer.Option(
        None, help="Text encoding: utf-8, utf-8-sig, latin-1, cp1252, utf-16... (csv; default utf-8)."
    ),
    no_header: bool = typer.Option(False, "--no-header", help="The file has no header row (give --fields)."),
    fields: str | None = typer.Option(None, help="Comma-separated column names, for a file without header."),
    sheet: str | None = typer.Option(None, help="Name of the sheet (excel); default: the first sheet."),
    header_row: int | None = typer.Option(
        None, help="Row naming the columns; rows above it are ignored (excel; default 1)."
    ),
    url: str | None = typer.Option(
        None, help="SQLAlchemy URL without the password (sql), e.g. postgresql+psycopg://user@host/db."
    ),
    table_name: str | None = typer.Option(None, "--table", help="Table or view to read, optionally schema.table (sql)."),
    query: str | None = typer.Option(None, help="One SELECT statement to read (sql)."),
    schema: str | None = typer.Option(None, help="Schema of the table (sql)."),
    batch_size: int | None = typer.Option(None, help="Rows fetched per round trip (sql; default 1000)."),
    password_env: str | None = typer.Option(None, help="Name of an environment variable holding the database password (sql)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the database password from standard input (sql)."),
    ask_password: bool = typer.Option(False, "--ask-password", help="Prompt for the database password (hidden) (sql)."),
    description: str = typer.Option("", help="What this source is."),
    update: bool = typer.Option(False, "--update", help="Replace an existing source of that name."),
) -> None:
    """Add a data source: a CSV/TSV file, a sheet of an Excel workbook, or a
    database table, view or query. Passwords are never taken as arguments: use
    --password-env, --password-stdin or --ask-password."""
    csv, excel, sql, files = ("csv",), ("excel",), ("sql",), ("csv", "excel")
    refuse_options_of_other_kinds(kind, {
        "--path": (path, files), "--delimiter": (delimiter, csv), "--quotechar": (quotechar, csv),
        "--encoding": (encoding, csv), "--no-header": (no_header, files), "--fields": (fields, files),
        "--sheet": (sheet, excel), "--header-row": (header_row, excel), "--url": (url, sql),
        "--table": (table_name, sql), "--query": (query, sql), "--schema": (schema, sql),
        "--batch-size": (batch_size, sql), "--password-env": (password_env, sql),
        "--password-stdin": (password_stdin, sql), "--ask-password": (ask_password, sql),
    })
    data: dict[str, Any] = {"name": name, "kind": kind, "description": description}
    if kind in ("csv", "excel"):
        if path is None:
            raise typer.BadParameter(f"a {kind} source needs --path (the file)")
        data["path"] = str(path.expanduser().resolve())
    if kind == "csv":
        data.update(delimiter=delimiter, quotechar=quotechar, encoding=encoding, header=not no_header)
    elif kind == "excel":
        data.update(sheet=sheet, header_row=0 if no_header else header_row)
    elif kind == "sql":
        if not url:
            raise typer.BadParameter("an sql source needs --url (an SQLAlchemy URL without the password)")
        data.update(url=_absolute_sqlite(url), table=table_name, query=query, batch_size=batch_size)
        data["schema"] = schema
        if password_env:
            data["password"] = f"env:{password_env}"
        elif password_stdin or ask_password:
            data["password"] = read_secret("Database password", password_stdin)
    if fields:
        data["fields"] = [f.strip() for f in fields.split(",")]
    definition = definitions.parse("source", {k: v for k, v in data.items() if v is not None})
    ws = workspace()
    if not update and any(s.name == name for s in definitions.list_definitions(ws, "source")):
        raise typer.BadParameter(f"a source named {name!r} exists; pass --update to replace it")
    validation.check_source(definition)
    console.print(f"source {name!r} {definitions.save(ws, 'source', definition)}")


def _absolute_sqlite(url: str) -> str:
    """A relative SQLite file in *url* made absolute from the current folder, as --path is."""
    match = re.match(r"^(sqlite(?:\+\w+)?:///)([^/?][^?]*)(\?.*)?$", url)
    if not match or match.group(2).startswith(("file:", ":memory:")):
        return url
    return match.group(1) + str(Path(match.group(2)).expanduser().resolve()) + (match.group(3) or "")


@app.command("list")
def list_(fmt: str = FormatOption, json: bool = JsonOption) -> None:
    """List data sources."""
    sources = definitions.list_definitions(workspace(), "source")
    if json:
        print_json(sources)
        return
    table(None, ["name", "kind", "where", "description"], [
        (s.name, s.kind, getattr(s, "path", None) or getattr(s, "url", ""), s.description) for s in sources
    ], fmt=fmt)


@app.command("show")
def show(name: str, json: bool = JsonOption) -> None:
    """Show a source's definition."""
    print_document(definitions.exportable(workspace(), "source", name), json)


@app.command("test")
def test(name: str, json: bool = JsonOption) -> None:
    """Open the source and describe it in one line."""
    print_test_result("source", name, connections.test_source(workspace(), name), json)


@app.command("remove")
def remove(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Remove a source definition (the file is not touched)."""
    confirm(f"Remove data source {name!r}?", yes)
    definitions.remove(workspace(), "source", name)
    console.print(f"source {name!r} removed")
