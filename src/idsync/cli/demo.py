"""``idsync demo``: a complete first run on the embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from idsync.cli.changes_view import print_changes, print_counts
from idsync.cli.common import workspace as open_workspace
from idsync.cli.job import error_text
from idsync.cli.output import console, progress, when
from idsync.domain.changes import ChangeOp
from idsync.domain.principals import Principal
from idsync.domain.results import Counts
from idsync.services import collection_runs, history, jobs, outbox, requests, yamlio
from idsync.services import demo as demo_service
from idsync.services.workspace import Workspace

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
    request_id, approved_ok = _approvals(path, ws)
    console.print(
        f"Explore it: export IDSYNC_HOME={path} IDSYNC_DATABASE_URL=sqlite:///{path / 'idsync.db'}; "
        f"idsync status; idsync request show {request_id}; idsync run list; idsync outbox list; idsync audit verify",
        markup=False,
        soft_wrap=True,
    )
    if not (ok and approved_ok):
        raise typer.Exit(1)


def _approvals(path: Path, ws: Workspace) -> tuple[int, bool]:
    """Steps 5 to 8: the store requires approval; the collection's run raises a
    request; the demo's approver approves part of it; what was applied, the
    trail and the messages waiting."""
    console.print("[bold]5.[/bold] approvals: collection runs writing to demo-directory now wait for ada")
    demo_service.add_people(ws, ws.actor)
    ws.close()
    ws = open_workspace(f"sqlite:///{path / 'idsync.db'}")  # now acting as demo-admin, mapped to this account
    approvals_file = path / "approvals.yaml"
    approvals_file.write_text(demo_service.approvals_yaml(path), encoding="utf-8")
    for item in yamlio.apply_file(ws, approvals_file):
        console.print(f"   {item.kind} {item.name!r} {item.outcome}", markup=False)
    console.print(f"   users: {demo_service.ADMIN} (admin, operator: this account), {demo_service.APPROVER} (approver)",
                  markup=False)

    demo_service.change_people(path / "people.csv")
    console.print("[bold]6.[/bold] the HR export changed (3 hired, 2 left); run the collection:")
    report = collection_runs.run_collection(ws, demo_service.COLLECTION)
    request = requests.of_run(ws, report.run.id)
    if request is None:
        console.print(f"   [red]✗[/red] run {report.run.id} {report.run.state.value}: no request was raised")
        return 0, False
    console.print(
        f"   run {report.run.id} {report.run.state.value.replace('_', ' ')}: nothing written; request {request.id} "
        f"raised for {demo_service.APPROVER}, expires {when(request.expires_at)}",
        markup=False, soft_wrap=True,
    )
    for plan in requests.get(ws, request.id).plans:
        if plan.plan_id is not None:
            print_changes(history.plan_changes(ws, plan.plan_id, op=ChangeOp.DELETE), None)
            print_changes(history.plan_changes(ws, plan.plan_id, op=ChangeOp.CREATE, limit=1), 1)
            print_counts(plan.counts or Counts(), f"   plan {plan.plan_id} of job {plan.job_name}")

    console.print(f"[bold]7.[/bold] {demo_service.APPROVER} approves the creates and updates, not the deletes:")
    approver = ws.acting_as(Principal(demo_service.APPROVER, "user"))
    decided = requests.approve(
        approver, request.id, kinds=["create", "update"], comment="leavers are removed after their exit interview"
    )
    run = decided.run
    if run is None:
        console.print(f"   [red]✗[/red] request {request.id} is {decided.request.state}: it did not run")
        return request.id, False
    print_counts(run.counts, f"   request {request.id} {decided.request.state}; run {run.id} {run.state.value}")

    console.print("[bold]8.[/bold] the decision trail, and the messages waiting in the outbox (no mail server here):")
    for row in requests.get(ws, request.id).trail:
        console.print(f"   {when(row.at)}  {row.actor:10} {row.action:8} {row.comment}", markup=False, soft_wrap=True)
    for message in outbox.list_messages(ws):
        console.print(f"   {message.state:8} to {message.recipient}: {message.trigger}", markup=False, soft_wrap=True)
    ok = run.counts.created == len(demo_service.HIRES) and run.counts.not_approved == demo_service.LEAVERS
    console.print(
        ("[green]✓[/green] " if ok else "[red]✗[/red] ")
        + f"applied exactly what was approved: created {run.counts.created}, "
        f"{run.counts.not_approved} deletes not approved and left undone"
    )
    return request.id, ok
