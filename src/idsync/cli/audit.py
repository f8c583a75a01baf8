"""``idsync audit``: who changed which definition, and when."""

from __future__ import annotations

import typer

from idsync.cli.common import workspace
from idsync.cli.output import JsonOption, print_json, table, when
from idsync.services import history

app = typer.Typer(help="The audit log of configuration changes.", no_args_is_help=True)


@app.command("list")
def list_(
    kind: str | None = typer.Option(None, help="Only this kind of object: store, source or job."),
    name: str | None = typer.Option(None, help="Only the object of this name."),
    limit: int = typer.Option(100, help="How many entries to list."),
    json: bool = JsonOption,
) -> None:
    """List configuration changes, newest first. Secret values are never recorded."""
    entries = history.list_audit(workspace(), kind=kind, name=name, limit=limit)
    if json:
        print_json(entries)
        return
    table(None, ["when", "who", "action", "kind", "name", "what changed"], [
        (when(e.at), e.actor, e.action, e.object_kind, e.object_name,
         ", ".join(e.detail.get("changed", [])) + (" (secrets changed)" if e.detail.get("secrets") else ""))
        for e in entries
    ])
