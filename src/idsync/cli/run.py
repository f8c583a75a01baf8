"""``idsync run``: run history and reports."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.markup import escape
from rich.text import Text

from idsync.cli.changes_view import print_counts
from idsync.cli.common import workspace
from idsync.cli.job import error_text, print_held
from idsync.cli.output import (
    FormatOption,
    JsonOption,
    UtcOption,
    console,
    print_json,
    state_text,
    table,
    when,
)
from idsync.domain.results import RunState
from idsync.errors import ConfigError
from idsync.services import collection_runs, history, job_features

app = typer.Typer(help="Runs: what each execution did.", no_args_is_help=True)


@app.command("list")
def list_(
    job: str | None = typer.Option(None, help="Only runs of this job."),
    state: str | None = typer.Option(None, help="Only runs in this state (e.g. failed)."),
    limit: int = typer.Option(50, help="How many runs to list."),
    fmt: str = FormatOption,
    utc: bool = UtcOption,
    json: bool = JsonOption,
) -> None:
    """List runs, newest first: collection runs and job runs."""
    runs = history.list_runs(workspace(), job=job, state=state, limit=limit)
    if json:
        print_json(runs)
        return
    columns = ["id", "kind", "name", "collection", "state", "started", "seconds",
               "read", "created", "updated", "deleted", "errors"]
    table(None, columns, [
        (r.id, r.kind, r.job_name, r.job_name if r.kind == "collection" else r.collection_name or "",
         state_text(r.state), when(r.started_at, utc),
         f"{r.duration_seconds:.1f}" if r.duration_seconds is not None else "",
         r.counts.read, r.counts.created, r.counts.updated, r.counts.deleted, r.counts.errors)
        for r in runs
    ], fmt)


@app.command("show")
def show(
    run_id: int,
    errors: int = typer.Option(100, help="How many record errors to show."),
    log: bool = typer.Option(True, "--log/--no-log", help="Show the run's log."),
    utc: bool = UtcOption,
    json: bool = JsonOption,
) -> None:
    """Show a run: state, counts, duration, its record errors and its log."""
    report = history.run_report(workspace(), run_id, max_errors=errors)
    run = report.run
    if json:
        print_json({"run": run, "errors": report.errors, "error_total": report.error_total, "log": report.log})
        return
    noun = {"collection": "collection", "smartgroup": "smart group update"}.get(run.kind, "job")
    heading = Text(f"run {run.id} of {noun} {run.job_name!r}: ")
    heading.append_text(state_text(run.state))
    heading.stylize("bold", len(heading.plain) - len(run.state.value))
    console.print(heading)
    console.print(run_summary(run, utc), markup=False)
    if run.state is RunState.HELD:
        print_held(run.error, run.job_name, run.plan_id)
    elif run.state is RunState.TERMINATED:
        console.print(f"[yellow]stopped:[/yellow] {escape(run.error or 'terminated')}")
    elif run.error:
        console.print(f"[red]cause:[/red] {escape(run.error)}")
    print_counts(run.counts, "counts")
    if run.kind == "collection":
        for child in collection_runs.report(workspace(), run.id).jobs:
            child_line = Text(f"job run {child.id} {child.job_name!r}: ")
            child_line.append_text(state_text(child.state))
            console.print(child_line.append(f" {child.error}" if child.error else ""))
    for err in report.errors:
        console.print(f"[red]error[/red] {error_text(err)}")
    if report.error_total > len(report.errors):
        console.print(f"… {report.error_total - len(report.errors)} more (--errors N)")
    if log:
        for line in report.log:
            console.print(f"{when(line.at, utc)} {line.level:7} {line.message}", markup=False)


def run_summary(run: Any, utc: bool = False) -> str:
    """When a run started and ended, who started it, how long it took, and its plan (when it has one)."""
    parts = [f"started {when(run.started_at, utc) or 'not yet'} by {run.requested_by or '?'} ({run.trigger})"]
    if run.finished_at is not None:
        parts.append(f"finished {when(run.finished_at, utc)}")
    if run.duration_seconds is not None:
        parts.append(f"{run.duration_seconds:.1f}s")
    if run.plan_id is not None:
        parts.append(f"plan {run.plan_id}")
    return "; ".join(parts)


@app.command("terminate")
def terminate(
    run_id: int,
    reason: str | None = typer.Option(None, help="Why; recorded in the run and its log, after who terminated it."),
    json: bool = JsonOption,
) -> None:
    """Stop a run.

    A queued or pending run ends now; a running one stops at its next batch.
    The changes it already made stay, and are listed in its plan. The run's
    log names who stopped it and why."""
    run = collection_runs.terminate_run(workspace(), run_id, reason)
    if json:
        print_json(run)
    elif run.state.finished:
        console.print(f"run {run.id} {run.state.value}", markup=False)
    else:
        console.print(f"run {run.id}: stop requested; it stops at its next batch (idsync run show {run.id})", markup=False)


@app.command("passwords")
def passwords(
    run_id: int,
    yes_show_secrets: bool = typer.Option(
        False, "--yes-show-secrets", help="Show them without asking (for scripts that store them safely)."
    ),
    json: bool = JsonOption,
) -> None:
    """Show the passwords generated for the objects run RUN_ID created, once.

    They are deleted as they are shown. Only whoever ran the job may see them."""
    ws = workspace()
    waiting = job_features.password_count(ws, run_id)
    if not waiting:
        console.print(
            f"run {run_id} has no generated passwords waiting (none were generated, "
            "or they were shown or delivered already)", markup=False,
        )
        return
    if not yes_show_secrets:
        if not sys.stdin.isatty():
            raise ConfigError("showing passwords needs a confirmation: pass --yes-show-secrets")
        if not typer.confirm(
            f"Show {waiting} passwords of run {run_id} on this screen? They are deleted once shown", default=False
        ):
            raise typer.Exit(1)
    items = job_features.take_passwords(ws, run_id)
    if json:
        print_json([{"dn": p.dn, "key": p.key, "password": p.password, "recipients": p.recipients} for p in items])
        return
    for p in items:
        console.print(f"{p.dn}\t{p.key}\t{p.password}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"{len(items)} passwords shown and deleted; give each to its user securely", markup=False)
