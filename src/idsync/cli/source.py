"""``idsync source``: data sources (CSV/TSV files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from idsync.cli.common import confirm, workspace
from idsync.cli.output import JsonOption, console, print_json, table
from idsync.services import connections, definitions

app = typer.Typer(help="Data sources: where identity data comes from.", no_args_is_help=True)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Name of the source."),
    path: Path = typer.Option(..., "--path", help="The CSV/TSV file."),
    kind: str = typer.Option("csv", "--kind", help="Kind of source: csv."),
    delimiter: str = typer.Option(",", help="Field delimiter; 'tab' for TSV."),
    quotechar: str = typer.Option('"', help="Quote character."),
    encoding: str = typer.Option("utf-8", help="Text encoding: utf-8, utf-8-sig, latin-1, cp1252, utf-16..."),
    no_header: bool = typer.Option(False, "--no-header", help="The file has no header row (give --fields)."),
    fields: str | None = typer.Option(None, help="Comma-separated column names, for a file without header."),
    description: str = typer.Option("", help="What this source is."),
    update: bool = typer.Option(False, "--update", help="Replace an existing source of that name."),
) -> None:
    """Add a data source."""
    data: dict[str, Any] = {
        "name": name, "kind": kind, "path": str(path.expanduser().resolve()), "delimiter": delimiter,
        "quotechar": quotechar, "encoding": encoding, "header": not no_header, "description": description,
    }
    if fields:
        data["fields"] = [f.strip() for f in fields.split(",")]
    definition = definitions.parse("source", data)
    ws = workspace()
    if not update and any(s.name == name for s in definitions.list_definitions(ws, "source")):
        raise typer.BadParameter(f"a source named {name!r} exists; pass --update to replace it")
    console.print(f"source {name!r} {definitions.save(ws, 'source', definition)}")


@app.command("list")
def list_(json: bool = JsonOption) -> None:
    """List data sources."""
    sources = definitions.list_definitions(workspace(), "source")
    if json:
        print_json(sources)
        return
    table(None, ["name", "kind", "path", "description"], [(s.name, s.kind, s.path, s.description) for s in sources])


@app.command("show")
def show(name: str, json: bool = JsonOption) -> None:
    """Show a source's definition."""
    body = definitions.exportable(workspace(), "source", name)
    if json:
        print_json(body)
    else:
        console.print(yaml.safe_dump(body, sort_keys=False, allow_unicode=True).rstrip(), markup=False)


@app.command("test")
def test(name: str, json: bool = JsonOption) -> None:
    """Open the source and describe it in one line."""
    line = connections.test_source(workspace(), name)
    if json:
        print_json({"source": name, "ok": True, "detail": line})
    else:
        console.print(line, markup=False)


@app.command("remove")
def remove(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Remove a source definition (the file is not touched)."""
    confirm(f"Remove data source {name!r}?", yes)
    definitions.remove(workspace(), "source", name)
    console.print(f"source {name!r} removed")
