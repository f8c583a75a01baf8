"""``idsync run``: run history and reports."""

from __future__ import annotations

import typer

from idsync.cli.changes_view import print_counts
from idsync.cli.common import workspace
from idsync.cli.job import error_text
from idsync.cli.output import JsonOption, console, print_json, table, when
from idsync.services import history

app = typer.Typer(help="Runs: what each execution did.", no_args_is_help=True)


@app.command("list")
def list_(
    job: str | None = typer.Option(None, help="Only runs of this job."),
    state: str | None = typer.Option(None, help="Only runs in this state (e.g. failed)."),
    limit: int = typer.Option(50, help="How many runs to list."),
    json: bool = JsonOption,
) -> None:
    """List runs, newest first."""
    runs = history.list_runs(workspace(), job=job, state=state, limit=limit)
    if json:
        print_json(runs)
        return
    table(None, ["id", "job", "state", "started", "seconds", "read", "created", "updated", "deleted", "errors"], [
        (r.id, r.job_name, r.state.value, when(r.started_at),
         f"{r.duration_seconds:.1f}" if r.duration_seconds is not None else "",
         r.counts.read, r.counts.created, r.counts.updated, r.counts.deleted, r.counts.errors)
        for r in runs
    ])


@app.command("show")
def show(
    run_id: int,
    errors: int = typer.Option(100, help="How many record errors to show."),
    log: bool = typer.Option(True, "--log/--no-log", help="Show the run's log."),
    json: bool = JsonOption,
) -> None:
    """Show a run: state, counts, duration, its record errors and its log."""
    report = history.run_report(workspace(), run_id, max_errors=errors)
    run = report.run
    if json:
        print_json({"run": run, "errors": report.errors, "error_total": report.error_total, "log": report.log})
        return
    console.print(f"run {run.id} of job {run.job_name!r}: [bold]{run.state.value}[/bold]")
    console.print(
        f"started {when(run.started_at)} by {run.requested_by or '?'} ({run.trigger}); "
        f"finished {when(run.finished_at)}; {run.duration_seconds or 0:.1f}s; plan {run.plan_id}",
        markup=False,
    )
    if run.error:
        console.print(f"[red]cause:[/red] {run.error}")
    print_counts(run.counts, "counts")
    for err in report.errors:
        console.print(f"[red]error[/red] {error_text(err)}")
    if report.error_total > len(report.errors):
        console.print(f"… {report.error_total - len(report.errors)} more (--errors N)")
    if log:
        for line in report.log:
            console.print(f"{when(line.at)} {line.level:7} {line.message}", markup=False)
