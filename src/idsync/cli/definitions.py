"""``idsync apply`` and ``idsync export``: definitions as code (YAML)."""

from __future__ import annotations

from pathlib import Path

import typer

from idsync.cli.common import workspace
from idsync.cli.output import JsonOption, console, err_console, print_json
from idsync.services import yamlio


def apply(
    file: Path = typer.Option(..., "--file", "-f", help="YAML file with stores, sources, jobs, schedules and collections."),
    offline: bool = typer.Option(
        False, "--offline", help="Do not read sources and stores to check the fields and attributes jobs use."
    ),
    json: bool = JsonOption,
) -> None:
    """Create or update the stores, sources, jobs, schedules and collections of a YAML file.

    Everything is validated first; nothing is saved if anything is wrong.
    Secrets left out (as in an export) keep their stored values.
    """
    items = yamlio.apply_file(workspace(), file, offline=offline)
    for item in items:
        if item.warning:
            err_console.print(f"idsync: warning: {item.warning}", markup=False, soft_wrap=True)
    if json:
        print_json(items)
        return
    for item in items:
        console.print(f"{item.kind} {item.name!r} {item.outcome}", markup=False)


def export(output: Path | None = typer.Option(None, "--output", "-o", help="File to write (default: standard output).")) -> None:
    """Write every store, source, job, schedule and collection as YAML (secrets left out)."""
    text = yamlio.export_all(workspace())
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"definitions written to {output}", markup=False)
