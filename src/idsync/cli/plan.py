"""``idsync plan``: stored plans (previews): list, show, export."""

from __future__ import annotations

from pathlib import Path

import typer

from idsync.cli.changes_view import print_changes, print_counts
from idsync.cli.common import workspace
from idsync.cli.job import error_text, export_to
from idsync.cli.output import FormatOption, JsonOption, console, print_json, state_text, table, when
from idsync.services import history
from idsync.services.plan_export import change_to_dict

app = typer.Typer(help="Plans: what a run would change, computed by a preview.", no_args_is_help=True)


@app.command("list")
def list_(
    job: str | None = typer.Option(None, help="Only plans of this job."),
    limit: int = typer.Option(50, help="How many plans to list."),
    fmt: str = FormatOption,
    json: bool = JsonOption,
) -> None:
    """List plans, newest first."""
    plans = history.list_plans(workspace(), job=job, limit=limit)
    if json:
        print_json(plans)
        return
    table(None, ["id", "job", "state", "created", "by", "changes", "applied by run"], [
        (p.id, p.job_name, state_text(p.state), when(p.created_at), p.created_by, p.change_count, p.applied_run_id or "")
        for p in plans
    ], fmt=fmt)


@app.command("show")
def show(
    plan_id: int,
    op: str | None = typer.Option(None, help="Only changes of this kind: create, update, delete, disable, move."),
    attribute: str | None = typer.Option(None, "--attribute", help="Only changes touching this attribute."),
    text: str | None = typer.Option(None, "--text", help="Only changes whose DN or values contain this text (any case)."),
    limit: int = typer.Option(50, help="How many changes to show."),
    all_: bool = typer.Option(False, "--all", help="Show every change."),
    json: bool = JsonOption,
) -> None:
    """Show a plan: its counts, each object's attribute diff, and the record errors found computing it."""
    ws = workspace()
    plan = history.get_plan(ws, plan_id)
    changes = history.plan_changes(ws, plan_id, op=history.change_op(op), limit=None if all_ else limit,
                                   attribute=attribute, text=text)
    errors, error_total = history.plan_errors(ws, plan_id, limit=None if all_ else limit)
    if json:
        print_json({
            "plan": plan, "changes": [change_to_dict(c) for c in changes],
            "errors": errors, "error_total": error_total,
        })
        return
    print_changes(changes, None)
    for err in errors:
        console.print(f"[red]error[/red] {error_text(err)}")
    if error_total > len(errors):
        console.print(f"… {error_total - len(errors)} more errors (--all shows every one)", markup=False)
    print_counts(plan.counts, f"plan {plan.id} of job {plan.job_name!r} ({plan.state})")
    if plan.error:
        console.print(f"note: {plan.error}", markup=False)


@app.command("export")
def export(
    plan_id: int,
    format_: str = typer.Option("ldif", "--format", help="csv, json or ldif."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File to write (default: standard output)."),
) -> None:
    """Export a plan as CSV, JSON or LDIF (LDIF applies with ldapmodify)."""
    export_to(workspace(), plan_id, format_, output)
