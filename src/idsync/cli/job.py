"""``idsync job``: sync jobs: create, preview, run."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from idsync.cli.changes_view import print_changes, print_counts
from idsync.cli.common import confirm, print_document, workspace
from idsync.cli.output import (
    FormatOption,
    JsonOption,
    console,
    err_console,
    print_json,
    progress,
    table,
)
from idsync.domain.results import ErrorItem, RunState
from idsync.services import definitions, history, job_features, job_trial, jobs, yamlio
from idsync.services.workspace import Workspace

app = typer.Typer(help="Sync jobs: map a source onto directory objects.", no_args_is_help=True)

EXIT_FOR_STATE = {
    RunState.SUCCEEDED: 0,
    RunState.COMPLETED_WITH_ERRORS: 3,
    RunState.FAILED: 4,
    RunState.HELD: 5,
    RunState.AWAITING_APPROVAL: 5,
    RunState.TERMINATED: 9,
}


@app.command("create")
def create(
    from_file: Path = typer.Option(..., "--from", "-f", help="YAML file with the job (a mapping, or a jobs: list)."),
    offline: bool = typer.Option(
        False, "--offline", help="Do not read the source and store to check the fields and attributes the job uses."
    ),
    json: bool = JsonOption,
) -> None:
    """Create or update sync jobs from a YAML file (see docs/reference.md for the fields)."""
    saved = yamlio.save_jobs(workspace(), from_file, offline=offline)
    results = [{"job": name, "outcome": s.outcome, "warning": s.warning} for name, s in saved]
    for r in results:
        if r["warning"]:
            err_console.print(f"idsync: warning: {r['warning']}", markup=False, soft_wrap=True)
    if json:
        print_json(results)
    for r in results if not json else []:
        console.print(f"job {r['job']!r} {r['outcome']}")


@app.command("list")
def list_(fmt: str = FormatOption, json: bool = JsonOption) -> None:
    """List sync jobs."""
    items = definitions.list_definitions(workspace(), "job")
    if json:
        print_json(items)
        return
    table(None, ["name", "source", "destination", "object", "description"], [
        (j.name, j.source.data_source or f"store {j.source.store}", f"{j.destination.store}: {j.destination.container}",
         j.destination.object_type, j.description)
        for j in items
    ], fmt=fmt)


@app.command("show")
def show(name: str, json: bool = JsonOption) -> None:
    """Show a job's definition, with its passwords, update mode and safety
    limits (a stored fixed password shows as ********)."""
    print_document(definitions.displayable(workspace(), "job", name), json)


@app.command("preview")
def preview(
    name: str,
    limit: int = typer.Option(20, help="How many changed objects to show (0 for none)."),
    export: str | None = typer.Option(None, help="Also export the plan: csv, json or ldif."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File for --export (default: standard output)."),
    json: bool = JsonOption,
) -> None:
    """Compute what a run would change, store it as a plan, and show it. Changes nothing."""
    ws = workspace()
    with progress(f"previewing {name}", enabled=not json) as on_progress:
        result = jobs.preview_job(ws, name, on_progress)
    plan = result.plan
    if export:
        export_to(ws, plan.id, export, output)
    if json:
        print_json({"plan": plan, "errors": result.errors})
        return
    if limit:
        shown = print_changes(history.plan_changes(ws, plan.id), limit)
        if plan.change_count > shown:
            console.print(f"… and {plan.change_count - shown} more (idsync plan show {plan.id} --all)")
    for err in result.errors[:limit or 20]:
        console.print(f"[red]error[/red] {error_text(err)}", markup=True)
    print_counts(plan.counts, f"plan {plan.id} of job {name!r} (nothing changed yet)")
    console.print(f"apply it with: idsync job run {name} --plan {plan.id}", markup=False)


def error_text(err: ErrorItem) -> str:
    """An error item as one line: where (line, key) and what."""
    line = f"line {err.line}" if err.line and not err.message.startswith("line ") else ""
    where = " ".join(p for p in (line, f"key {err.key}" if err.key else "", err.dn or "") if p)
    return escape((f"{where}: " if where else "") + err.message)


def export_to(ws: Workspace, plan_id: int, fmt: str, output: Path | None) -> None:
    """Write plan *plan_id* as *fmt* to *output*, or to standard output."""
    if output is None:
        history.export_plan(ws, plan_id, fmt, sys.stdout)
        return
    with output.open("w", encoding="utf-8", newline="") as out:
        history.export_plan(ws, plan_id, fmt, out)
    console.print(f"plan {plan_id} written to {output} ({fmt})", markup=False)


@app.command("run")
def run(
    name: str,
    plan: int | None = typer.Option(None, "--plan", help="Apply this stored plan instead of planning anew (releases a held run)."),
    full: bool = typer.Option(False, "--full", help="A changed-only job looks at every record this once."),
    json: bool = JsonOption,
) -> None:
    """Run a job: plan and apply its changes. Exit code 0 on success, 3 when some
    records failed, 4 when the run failed, 5 when it was held by a safety limit."""
    ws = workspace()
    with progress(f"running {name}", enabled=not json) as on_progress:
        row = jobs.run_job(ws, name, plan_id=plan, on_progress=on_progress, full=full)
    report = history.run_report(ws, row.id, max_errors=20)
    if json:
        print_json({"run": row, "errors": report.errors})
    else:
        for err in report.errors:
            console.print(f"[red]error[/red] {error_text(err)}")
        if report.error_total > len(report.errors):
            console.print(f"… {report.error_total - len(report.errors)} more errors: idsync run show {row.id}")
        print_counts(row.counts, f"run {row.id} {row.state.value} in {row.duration_seconds or 0:.1f}s")
        if row.state is RunState.HELD:
            print_held(row.error, name, row.plan_id)
        elif row.error:
            console.print(f"[red]cause:[/red] {row.error}")
        waiting = job_features.password_count(ws, row.id)
        if waiting:
            console.print(
                f"{waiting} generated passwords wait for delivery: idsync run passwords {row.id}", markup=False
            )
    raise typer.Exit(EXIT_FOR_STATE.get(row.state, 1))


def print_held(reason: str | None, job: str, plan_id: int | None) -> None:
    """A held run: why, and how to release its plan."""
    console.print(f"[yellow]{escape(reason or 'held')}[/yellow]")
    console.print(f"nothing was changed; review it with `idsync plan show {plan_id}` and release it with "
                  f"`idsync job run {job} --plan {plan_id}`", markup=False)


@app.command("remove")
def remove(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Remove a job definition. Its run history is kept."""
    confirm(f"Remove sync job {name!r}?", yes)
    definitions.remove(workspace(), "job", name)
    console.print(f"job {name!r} removed")


@app.command("try")
def try_(
    name: str,
    rows: int = typer.Option(job_trial.DEFAULT_ROWS, "--rows", "-n", min=1, max=job_trial.MOST_ROWS,
                             help=f"How many source rows to map (1 to {job_trial.MOST_ROWS})."),
    json: bool = JsonOption,
) -> None:
    """Map the first rows of the job's source and show the entries they would
    make, and the rows that fail. Reads neither the destination nor more rows;
    writes nothing. Exit status 3 when a row fails."""
    trial = job_trial.try_stored(workspace(), name, rows)
    if json:
        print_json(trial)
    else:
        print_trial(trial)
    if trial.errors:
        raise typer.Exit(3)


def print_trial(trial: job_trial.Trial) -> None:
    """Each entry as LDIF-like lines, then each failing row, then one line of totals."""
    for entry in trial.entries:
        where = f"line {entry.line}, " if entry.line else ""
        console.print(f"{entry.dn}  ({where}key {entry.key})", markup=False, soft_wrap=True)
        for attribute, values in entry.attributes.items():
            console.print(f"  {attribute}: {'; '.join(values)}", markup=False, soft_wrap=True)
    for err in trial.errors:
        where = ", ".join(p for p in (f"line {err.line}" if err.line else "", f"key {err.key}" if err.key else "",
                                      f"attribute {err.attribute}" if err.attribute else "") if p)
        console.print(f"[red]error[/red] {escape(where + ': ' if where else '')}{escape(err.message)}",
                      markup=True, soft_wrap=True)
    if trial.unresolved:
        console.print(f"not looked up in a trial (resolve): {', '.join(trial.unresolved)}", markup=False)
    skipped = f", {len(trial.skipped)} skipped" if trial.skipped else ""
    console.print(
        f"job {trial.job!r}: {trial.read} row(s) of {trial.source}: {len(trial.entries)} entr"
        f"{'y' if len(trial.entries) == 1 else 'ies'}, {len(trial.errors)} error(s){skipped} (nothing written)",
        markup=False, soft_wrap=True,
    )
