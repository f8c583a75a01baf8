"""``idsync demo``: a complete first run on the embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from idsync.cli.changes_view import print_changes, print_counts
from idsync.cli.common import workspace as open_workspace
from idsync.cli.job import error_text
from idsync.cli.output import console, progress
from idsync.services import demo as demo_service
from idsync.services import history, jobs, yamlio

JOB = "hr-to-directory"


def demo(
    workspace: Path = typer.Option(Path("idsync-demo"), "--workspace", "-w", help="Folder for the demo (replaced if it holds an earlier demo)."),
    people: int = typer.Option(1000, min=1, help="How many people the sample HR export holds."),
) -> None:
    """Create a sample HR export, an embedded directory and a job; preview; run;
    run again to show that nothing changes. The workspace stays for you to explore."""
    path = demo_service.prepare(workspace)
    os.environ["IDSYNC_HOME"] = str(path)
    os.environ.pop("IDSYNC_SECRET_KEY", None)
    ws = open_workspace(f"sqlite:///{path / 'idsync.db'}")
    broken = demo_service.write_people(path / "people.csv", people)
    definitions_file = path / "definitions.yaml"
    definitions_file.write_text(demo_service.definitions_yaml(path), encoding="utf-8")
    console.print(f"[bold]1.[/bold] workspace {path}: {people} people (+{broken} broken rows) in people.csv")
    for item in yamlio.apply_file(ws, definitions_file):
        console.print(f"   {item.kind} {item.name!r} {item.outcome}", markup=False)
    demo_service.ensure_container(ws, "demo-directory")

    console.print("[bold]2.[/bold] preview (nothing is written):")
    preview = jobs.preview_job(ws, JOB)
    print_changes(history.plan_changes(ws, preview.plan.id), 2)
    print_counts(preview.plan.counts, f"   plan {preview.plan.id}")

    console.print("[bold]3.[/bold] run:")
    with progress("running") as on_progress:
        first = jobs.run_job(ws, JOB, on_progress=on_progress)
    for err in history.run_report(ws, first.id, max_errors=10).errors:
        console.print(f"   [red]error[/red] {error_text(err)}")
    print_counts(first.counts, f"   run {first.id} {first.state.value} in {first.duration_seconds or 0:.2f}s")

    console.print("[bold]4.[/bold] run again (the source did not change):")
    second = jobs.run_job(ws, JOB)
    print_counts(second.counts, f"   run {second.id} {second.state.value} in {second.duration_seconds or 0:.2f}s")

    ok = first.counts.created > 0 and second.counts.changed == 0
    console.print(
        ("[green]✓[/green] " if ok else "[red]✗[/red] ")
        + f"created {first.counts.created} on the first run, changed {second.counts.changed} on the second"
    )
    console.print(
        f"Explore it: export IDSYNC_HOME={path} IDSYNC_DATABASE_URL=sqlite:///{path / 'idsync.db'}; "
        f"idsync run list; idsync run show {first.id}; idsync job show {JOB}",
        markup=False,
        soft_wrap=True,
    )
    if not ok:
        raise typer.Exit(1)
