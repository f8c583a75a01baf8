"""``idsync collection``: job collections: create, edit, preview, run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from idsync.cli import wizard
from idsync.cli.changes_view import print_counts
from idsync.cli.common import confirm, print_document, workspace
from idsync.cli.job import EXIT_FOR_STATE, error_text
from idsync.cli.output import FormatOption, JsonOption, console, print_json, state_text, table, when
from idsync.cli.review_view import confirmed
from idsync.domain.collections import ALL_NOTIFY_TRIGGERS, CollectionDefinition
from idsync.domain.results import RunState
from idsync.errors import ConfigError
from idsync.services import answers, collection_runs, collections, definitions, requests, yamlio
from idsync.services.collection_edits import (
    KEEP,
    CollectionEdit,
    NewCollection,
    edit_collection,
    new_collection,
)
from idsync.services.collection_runs import CollectionReport
from idsync.services.collections import CollectionPreview
from idsync.services.workspace import Workspace

app = typer.Typer(help="Job collections: ordered jobs run as one unit, on a schedule or now.", no_args_is_help=True)

YesOption = typer.Option(False, "--yes", "-y", help="Save without asking (for scripts).")


@app.command("create")
def create(
    name: str | None = typer.Argument(None, help="Name of the collection (asked for when missing)."),
    from_file: Path | None = typer.Option(None, "--from", "-f", help="YAML file with the collection."),
    job: list[str] | None = typer.Option(None, "--job", "-j", help="A job, in run order; JOB:continue to go on when it fails."),
    description: str = typer.Option("", help="What the collection is for."),
    owner: list[str] | None = typer.Option(None, "--owner", help="An owner (repeat for several)."),
    schedule: str | None = typer.Option(None, "--schedule", help="Run on this schedule."),
    notify_to: list[str] | None = typer.Option(None, "--notify-to", help="Send notifications to this address (repeat)."),
    notify_on: list[str] | None = typer.Option(None, "--notify-on", help="When: always, records_updated, errors, failed; also recovered, missed, held (repeat)."),
    preview_when_finished: bool = typer.Option(False, "--preview-when-finished", help="Preview the first run right after saving."),
    overlap: str = typer.Option("skip", help="When the previous run still runs: skip or queue."),
    yes: bool = YesOption,
    json: bool = JsonOption,
) -> None:
    """Create a collection from a file, from options, or by answering questions;
    review what will be saved, confirm, then save."""
    ws = workspace()
    if from_file is not None:
        if job:
            raise ConfigError("give either --from FILE or --job options, not both")
        items: list[CollectionDefinition] = yamlio.read_definitions(from_file, "collection", name=name)
    elif job:
        if name is None:
            raise ConfigError("give the collection's name: idsync collection create NAME --job JOB")
        items = [new_collection(NewCollection(
            name=name, jobs=job, description=description, owners=owner or (), schedule=schedule,
            notify_to=notify_to or (), notify_on=notify_on or (), preview_when_finished=preview_when_finished,
            overlap=overlap,
        ))]
    else:
        items = [_ask(ws, name)]
    results = [_review_save_preview(ws, collection, yes=yes, json=json) for collection in items]
    if json:
        print_json(results)


def _ask(ws: Workspace, name: str | None, current: CollectionDefinition | None = None) -> CollectionDefinition:
    """The collection from answers to questions (needs a terminal), each checked
    as it is given; with *current*, its values are the defaults (an edit)."""
    if not sys.stdin.isatty():
        raise ConfigError("give --from FILE or --job options (or run in a terminal to be asked)")
    if current is None:
        name = name or wizard.ask("Name", lambda text: answers.new_name(ws, "collection", text))
    description = typer.prompt(
        "Description", default=current.description if current else "", show_default=bool(current and current.description)
    )
    known = [j.name for j in definitions.list_definitions(ws, "job")]
    if not known:
        raise ConfigError("there is no job to put in a collection yet", hint="create a job first")
    wizard.show_choices("Jobs you can pick (by number or name)", known)
    names = wizard.ask(
        "Jobs, in run order (comma-separated)",
        lambda text: answers.existing(ws, "job", wizard.picked(text, known) or _none_given("a job")),
        default=", ".join(current.job_names) if current else None,
    )
    before = {e.job: e.on_failure for e in current.jobs} if current else {}
    entries = [
        {"job": job, "on_failure": wizard.ask(
            f"When {job} fails: abort the rest or continue", answers.on_failure, default=before.get(job, "abort")
        )}
        for job in names
    ]
    schedules = [s.name for s in definitions.list_definitions(ws, "schedule")]
    schedule: str | None = None
    if schedules:
        wizard.show_choices("Schedules you can pick (by number or name; - for none)", schedules)
        schedule = wizard.ask(
            "Schedule", lambda text: _one_schedule(ws, wizard.picked(text, schedules)),
            default=current.schedule if current and current.schedule else None,
        )
    else:
        console.print("no schedule yet: the collection runs when started (add one later with --schedule)", markup=False)
    was = current.notifications if current else None
    notify = wizard.yes_no("Send notifications by e-mail?", default=bool(was and was.enabled))
    recipients: list[str] = list(was.recipients) if was else []
    triggers: list[str] = list(was.triggers) if was else []
    if notify:
        recipients = wizard.ask(
            "Recipients (comma-separated e-mail addresses)", answers.email_addresses,
            default=", ".join(recipients) or None,
        )
        wizard.show_choices("Notify when (by number or name, comma-separated)", list(ALL_NOTIFY_TRIGGERS))
        triggers = wizard.ask(
            "Triggers", lambda text: answers.notify_triggers(wizard.picked(text, list(ALL_NOTIFY_TRIGGERS))),
            default=", ".join(triggers) or "failed",
        )
    preview = wizard.yes_no(
        "Preview the first run when finished?", default=bool(current and current.preview_when_finished)
    )
    if current is not None:
        return edit_collection(current, CollectionEdit(
            extra={"jobs": entries}, schedule=schedule, description=description, notify=notify,
            notify_to=recipients if notify else (), notify_on=triggers if notify else (),
            preview_when_finished=preview,
        ))
    assert name is not None
    return new_collection(NewCollection(
        name=name, jobs=[f"{e['job']}:{e['on_failure']}" for e in entries], description=description,
        schedule=schedule, notify_to=recipients if notify else (), notify_on=triggers if notify else (),
        preview_when_finished=preview,
    ))


def _none_given(what: str) -> list[str]:
    raise ConfigError(f"give at least {what}")


def _one_schedule(ws: Workspace, names: list[str]) -> str | None:
    """No schedule (an empty answer, or -), or one stored schedule."""
    names = [n for n in names if n != "-"]
    if len(names) > 1:
        raise ConfigError("a collection runs on one schedule: pick one")
    return answers.existing(ws, "schedule", names)[0] if names else None


def _review_save_preview(
    ws: Workspace, collection: CollectionDefinition, *, yes: bool, json: bool
) -> dict[str, Any]:
    """Review, confirm, save; then, with preview when finished, the first run's
    preview. What happened, for --json."""
    review = collections.review_changes(ws, collection)
    outcome = collections.save_collection(ws, collection) if confirmed(review, yes=yes, json=json) else "unchanged"
    result: dict[str, Any] = {"collection": collection.name, "outcome": outcome, "review": review}
    if not json:
        console.print(f"job collection {collection.name!r} {outcome}", markup=False)
    if outcome != "unchanged" and collection.preview_when_finished:
        result["preview"] = preview = collections.preview_collection(ws, collection.name)
        if not json:
            _print_preview(ws, preview, limit=10)
    return result


@app.command("edit")
def edit(
    name: str = typer.Argument(..., help="The collection to change."),
    from_file: Path | None = typer.Option(None, "--from", "-f", help="Replace the whole definition with this YAML file."),
    add_job: str | None = typer.Option(None, "--add-job", help="Add this job (at the end, or at --position)."),
    remove_job: str | None = typer.Option(None, "--remove-job", help="Remove this job."),
    move_job: str | None = typer.Option(None, "--move-job", help="Move this job to --position."),
    job: str | None = typer.Option(None, "--job", help="The job whose --on-failure to change."),
    on_failure: str | None = typer.Option(None, "--on-failure", help="abort or continue, for --add-job, --move-job or --job."),
    position: int | None = typer.Option(None, "--position", help="1-based position for --add-job or --move-job."),
    schedule: str | None = typer.Option(None, "--schedule", help="Run on this schedule."),
    no_schedule: bool = typer.Option(False, "--no-schedule", help="Run on no schedule (manual runs only)."),
    description: str | None = typer.Option(None, help="New description."),
    owner: list[str] | None = typer.Option(None, "--owner", help="Owners (replaces the list; repeat)."),
    notify: bool | None = typer.Option(None, "--notify/--no-notify", help="Turn notifications on or off."),
    notify_to: list[str] | None = typer.Option(None, "--notify-to", help="Recipients (replaces the list; repeat)."),
    notify_on: list[str] | None = typer.Option(None, "--notify-on", help="Triggers (replaces the list; repeat)."),
    preview_when_finished: bool | None = typer.Option(
        None, "--preview-when-finished/--no-preview-when-finished", help="Preview the first run right after saving."
    ),
    overlap: str | None = typer.Option(None, help="skip or queue."),
    yes: bool = YesOption,
    json: bool = JsonOption,
) -> None:
    """Change a collection: add, remove or reorder jobs, or change its settings;
    review the differences, confirm, then save."""
    ws = workspace()
    _id, current = collections.load_collection(ws, name)
    given = [
        add_job, remove_job, move_job, job, on_failure, position, schedule, no_schedule or None, description, owner,
        notify, notify_to, notify_on, preview_when_finished, overlap,
    ]
    if from_file is None and all(value is None for value in given) and sys.stdin.isatty():
        result = _review_save_preview(ws, _ask(ws, name, current), yes=yes, json=json)
        if json:
            print_json(result)
        return
    if from_file is not None:
        replacement = yamlio.read_definitions(from_file, "collection", name=name, alone=True)[0]
        result = _review_save_preview(ws, replacement, yes=yes, json=json)
        if json:
            print_json(result)
        return
    if schedule is not None and no_schedule:
        raise ConfigError("give --schedule NAME or --no-schedule, not both")
    if move_job is not None and position is None:
        raise ConfigError("--move-job needs --position N")
    if job is not None and on_failure is None:
        raise ConfigError("--job needs --on-failure abort|continue")
    updated = edit_collection(current, CollectionEdit(
        add_job=add_job, remove_job=remove_job, move_job=move_job, job=job, on_failure=on_failure,
        position=position, schedule=None if no_schedule else schedule if schedule is not None else KEEP,
        description=description, owners=owner or (), notify=notify, notify_to=notify_to or (),
        notify_on=notify_on or (), preview_when_finished=preview_when_finished, overlap=overlap,
    ))
    result = _review_save_preview(ws, updated, yes=yes, json=json)
    if json:
        print_json(result)


@app.command("list")
def list_(fmt: str = FormatOption, json: bool = JsonOption) -> None:
    """List collections with their jobs, schedule and last run."""
    ws = workspace()
    items = collections.list_collections(ws)
    last = collection_runs.last_runs(ws, [c.name for c in items])
    if json:
        print_json([{"collection": c, "last_run": last[c.name]} for c in items])
        return
    rows = []
    for c in items:
        previous = last[c.name]
        rows.append((
            c.name, ", ".join(c.job_names), c.schedule or "",
            when(previous.started_at) if previous else "", state_text(previous.state) if previous else "", c.description,
        ))
    table(None, ["name", "jobs", "schedule", "last run", "state", "description"], rows, fmt=fmt)


@app.command("show")
def show(name: str, runs: int = typer.Option(5, help="How many recent runs to show."), json: bool = JsonOption) -> None:
    """Show a collection's definition and its recent runs."""
    ws = workspace()
    body = definitions.exportable(ws, "collection", name)
    recent = collection_runs.recent_runs(ws, name, limit=runs)
    if json:
        print_json({"definition": body, "runs": recent})
        return
    print_document(body, json=False)
    if recent:
        console.print("recent runs:", markup=False)
        table(None, ["run", "state", "trigger", "started", "changed", "errors", "cause"], [
            (r.id, r.state.value, r.trigger, when(r.started_at or r.created_at), r.counts.changed, r.counts.errors, r.error or "")
            for r in recent
        ])


@app.command("preview")
def preview(
    name: str,
    limit: int = typer.Option(10, help="How many changed objects to show per job (0 for none)."),
    json: bool = JsonOption,
) -> None:
    """Compute what the collection's next run would change, job by job. Changes nothing."""
    ws = workspace()
    result = collections.preview_collection(ws, name)
    if json:
        print_json(result)
    else:
        _print_preview(ws, result, limit)
    if result.failed:
        raise typer.Exit(4)


def _print_preview(ws: Workspace, result: CollectionPreview, limit: int) -> None:
    from idsync.cli.changes_view import print_changes
    from idsync.services import history

    for position, item in enumerate(result.jobs, start=1):
        heading = f"{position}. job {item.job!r} (on failure: {item.on_failure})"
        if item.skipped:
            console.print(f"{heading}: {item.skipped}", markup=False)
        elif item.error or item.plan is None:
            console.print(f"{heading}: [red]preview failed[/red]: {item.error}")
        else:
            if limit:
                shown = print_changes(history.plan_changes(ws, item.plan.id), limit)
                if item.plan.change_count > shown:
                    console.print(f"… and {item.plan.change_count - shown} more (idsync plan show {item.plan.id} --all)")
            for err in item.errors[:limit or 20]:
                console.print(f"[red]error[/red] {error_text(err)}")
            print_counts(item.plan.counts, f"{heading}, plan {item.plan.id}")
    for linked in result.groups:
        for line in linked.lines(limit or 10):
            console.print(line, markup=False)
    print_counts(result.counts, f"collection {result.collection!r} (nothing changed yet)")


@app.command("run")
def run(
    name: str,
    json: bool = JsonOption,
    no_send: bool = typer.Option(
        False, "--no-send", help="Leave the run's notifications in the outbox for a scheduler or an outbox sender."
    ),
) -> None:
    """Run a collection now, in this process, and deliver its notifications before exiting."""
    from idsync.cli.output import err_console
    from idsync.domain.plain import to_plain
    from idsync.runtime.node import deliver_run

    ws = workspace()
    result = collection_runs.run_collection(ws, name)
    delivery = None if no_send else deliver_run(ws, result.run.id)
    if json:
        document = to_plain(result)
        if delivery is not None:
            document["notifications"] = {
                "sent": delivery.sent, "failed": delivery.failed, "pending": delivery.pending,
                "summary": delivery.summary(),
            }
        print_json(document)
    else:
        print_report(result)
        _print_request(ws, result.run.id)
        if delivery is not None:
            for line in delivery.lines:
                err_console.print(f"  {line}", markup=False, soft_wrap=True)
            console.print(delivery.summary(), markup=False, soft_wrap=True)
        else:
            console.print("notifications: left in the outbox (--no-send)", markup=False)
    raise typer.Exit(EXIT_FOR_STATE.get(result.run.state, 1))


def _print_request(ws: Workspace, run_id: int) -> None:
    """The request a run raised (it awaits approval, or its held jobs do), if any."""
    request = requests.of_run(ws, run_id)
    if request is None:
        return
    console.print(
        f"request {request.id} raised ({request.kind}): {request.state}, {request.required_approvals} approval(s) "
        f"needed before anything is applied; it expires {when(request.expires_at)}",
        markup=False, soft_wrap=True,
    )
    console.print(f"see it: idsync request show {request.id}", markup=False)


def print_report(result: CollectionReport) -> None:
    """A collection run and its job runs, as a table."""
    run = result.run
    console.print(f"run {run.id} of collection {run.collection_name!r}: [bold]{run.state.value}[/bold]")
    if result.jobs:
        table(None, ["run", "job", "state", "read", "created", "updated", "deleted", "errors", "cause"], [
            (j.id, j.job_name, j.state.value, j.counts.read, j.counts.created, j.counts.updated,
             j.counts.deleted, j.counts.errors, j.error or "")
            for j in result.jobs
        ])
    if run.state is not RunState.AWAITING_APPROVAL:  # it has read and written nothing yet
        print_counts(run.counts, f"collection run {run.id} in {run.duration_seconds or 0:.1f}s")
    if run.error:
        console.print(("" if run.state is RunState.SKIPPED else "cause: ") + run.error, markup=False)


@app.command("remove")
def remove(
    name: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json: bool = JsonOption,
) -> None:
    """Remove a collection. Its run history is kept."""
    ws = workspace()
    collections.load_collection(ws, name)
    confirm(f"Remove job collection {name!r}?", yes)
    collections.remove_collection(ws, name)
    if json:
        print_json({"collection": name, "outcome": "removed"})
    else:
        console.print(f"collection {name!r} removed", markup=False)
