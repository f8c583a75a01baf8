"""``idsync collection``: job collections: create, edit, preview, run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from idsync.cli.changes_view import print_counts
from idsync.cli.common import confirm, print_document, workspace
from idsync.cli.job import EXIT_FOR_STATE, error_text
from idsync.cli.output import JsonOption, console, print_json, table, when
from idsync.cli.review_view import confirmed, read_definitions
from idsync.domain import collections as model
from idsync.domain.collections import ALL_NOTIFY_TRIGGERS, CollectionDefinition
from idsync.domain.results import RunState
from idsync.errors import ConfigError
from idsync.services import collection_runs, collections, definitions
from idsync.services.collection_runs import CollectionReport
from idsync.services.collections import CollectionPreview
from idsync.services.workspace import Workspace
from idsync.store.collections_repo import CollectionRunRepository

app = typer.Typer(help="Job collections: ordered jobs run as one unit, on a schedule or now.", no_args_is_help=True)

YesOption = typer.Option(False, "--yes", "-y", help="Save without asking (for scripts).")


def _on_failure(value: str | None) -> model.OnFailure | None:
    if value is None:
        return None
    if value not in ("abort", "continue"):
        raise ConfigError(f"--on-failure {value!r}: use abort or continue")
    return value  # type: ignore[return-value]


def _job_entry(text: str) -> dict[str, str]:
    """``hr`` or ``hr:continue`` as a collection entry."""
    job, _, on_failure = text.partition(":")
    return {"job": job, "on_failure": _on_failure(on_failure or None) or "abort"}


def _parse(data: dict[str, Any]) -> CollectionDefinition:
    parsed: CollectionDefinition = definitions.parse("collection", data)
    return parsed


def _notifications(enabled: bool | None, to: list[str] | None, on: list[str] | None, current: dict[str, Any]) -> dict[str, Any]:
    out = dict(current)
    if to:
        out["recipients"] = to
        out.setdefault("enabled", True)
    if on:
        unknown = [t for t in on if t not in ALL_NOTIFY_TRIGGERS]
        if unknown:
            raise ConfigError(f"--notify-on {unknown[0]!r}: use one of {', '.join(ALL_NOTIFY_TRIGGERS)}")
        out["triggers"] = on
    if enabled is not None:
        out["enabled"] = enabled
    return out


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
        items = [_parse(item) for item in read_definitions(from_file, "collections")]
        if name is not None and [c.name for c in items] != [name]:
            raise ConfigError(f"{from_file} defines {', '.join(repr(c.name) for c in items)}, not {name!r}")
    elif job:
        if name is None:
            raise ConfigError("give the collection's name: idsync collection create NAME --job JOB")
        data: dict[str, Any] = {
            "name": name,
            "description": description,
            "owners": owner or [],
            "jobs": [_job_entry(j) for j in job],
            "schedule": schedule,
            "notifications": _notifications(None, notify_to, notify_on, {}),
            "preview_when_finished": preview_when_finished,
            "overlap": overlap,
        }
        items = [_parse(data)]
    else:
        items = [_ask(ws, name)]
    results = [_review_save_preview(ws, collection, yes=yes, json=json) for collection in items]
    if json:
        print_json(results)


def _ask(ws: Workspace, name: str | None) -> CollectionDefinition:
    """The collection from answers to questions (needs a terminal)."""
    if not sys.stdin.isatty():
        raise ConfigError("give --from FILE or --job JOB options (or run in a terminal to be asked)")
    known = [j.name for j in definitions.list_definitions(ws, "job")]
    name = name or typer.prompt("Name")
    description = typer.prompt("Description", default="", show_default=False)
    console.print(f"jobs: {', '.join(known) or '(none yet: create one with idsync job create)'}", markup=False)
    names = [n.strip() for n in typer.prompt("Jobs, in run order (comma-separated)").split(",") if n.strip()]
    entries = []
    for job in names:
        on_failure = typer.prompt(f"When {job} fails: abort the rest or continue", default="abort")
        entries.append({"job": job, "on_failure": _on_failure(on_failure) or "abort"})
    schedule = typer.prompt("Schedule (empty for none)", default="", show_default=False) or None
    preview = typer.confirm("Preview the first run when finished?", default=False)
    return _parse(
        {
            "name": name,
            "description": description,
            "jobs": entries,
            "schedule": schedule,
            "preview_when_finished": preview,
        }
    )


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
    if from_file is not None:
        items = [_parse(item) for item in read_definitions(from_file, "collections")]
        if [c.name for c in items] != [name]:
            raise ConfigError(f"{from_file} must define collection {name!r} alone")
        result = _review_save_preview(ws, items[0], yes=yes, json=json)
        if json:
            print_json(result)
        return
    if schedule is not None and no_schedule:
        raise ConfigError("give --schedule NAME or --no-schedule, not both")
    failure = _on_failure(on_failure)
    updated = current
    try:
        if remove_job is not None:
            updated = model.remove_job(updated, remove_job)
        if add_job is not None:
            updated = model.add_job(updated, add_job, failure or "abort", position)
        if move_job is not None:
            if position is None:
                raise ConfigError("--move-job needs --position N")
            updated = model.move_job(updated, move_job, position)
            if failure is not None:
                updated = model.set_on_failure(updated, move_job, failure)
        if job is not None:
            if failure is None:
                raise ConfigError("--job needs --on-failure abort|continue")
            updated = model.set_on_failure(updated, job, failure)
        elif failure is not None and add_job is None and move_job is None:
            raise ConfigError("--on-failure goes with --add-job, --move-job or --job")
        changes: dict[str, Any] = {}
        if schedule is not None or no_schedule:
            changes["schedule"] = None if no_schedule else schedule
        if description is not None:
            changes["description"] = description
        if owner:
            changes["owners"] = owner
        if notify is not None or notify_to or notify_on:
            changes["notifications"] = _notifications(notify, notify_to, notify_on, current.notifications.model_dump())
        if preview_when_finished is not None:
            changes["preview_when_finished"] = preview_when_finished
        if overlap is not None:
            changes["overlap"] = overlap
        if changes:
            updated = model.with_changes(updated, **changes)
    except ValueError as exc:
        raise ConfigError(f"collection {name!r}: {_value_error(exc)}") from exc
    result = _review_save_preview(ws, updated, yes=yes, json=json)
    if json:
        print_json(result)


def _value_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        return f"{loc}: {message}" if loc else message
    return str(exc)


@app.command("list")
def list_(json: bool = JsonOption) -> None:
    """List collections with their jobs, schedule and last run."""
    ws = workspace()
    items = collections.list_collections(ws)
    with ws.db.session() as session:
        repo = CollectionRunRepository(session)
        last = {c.name: repo.last(c.name) for c in items}
    if json:
        print_json([{"collection": c, "last_run": last[c.name]} for c in items])
        return
    rows = []
    for c in items:
        previous = last[c.name]
        rows.append((
            c.name, ", ".join(c.job_names), c.schedule or "",
            when(previous.started_at) if previous else "", previous.state.value if previous else "", c.description,
        ))
    table(None, ["name", "jobs", "schedule", "last run", "state", "description"], rows)


@app.command("show")
def show(name: str, runs: int = typer.Option(5, help="How many recent runs to show."), json: bool = JsonOption) -> None:
    """Show a collection's definition and its recent runs."""
    ws = workspace()
    body = definitions.exportable(ws, "collection", name)
    with ws.db.session() as session:
        recent = CollectionRunRepository(session).recent(name, limit=runs)
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
    print_counts(result.counts, f"collection {result.collection!r} (nothing changed yet)")


@app.command("run")
def run(name: str, json: bool = JsonOption) -> None:
    """Run a collection now, in this process: its jobs in order. Exit code 0 on
    success, 3 when some records failed, 4 when a job failed, 1 when skipped."""
    ws = workspace()
    result = collection_runs.run_collection(ws, name)
    if json:
        print_json(result)
    else:
        print_report(result)
    raise typer.Exit(EXIT_FOR_STATE.get(result.run.state, 1))


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
