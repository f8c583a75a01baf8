"""``idsync schedule``: named, reusable schedules and the collections they start."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from idsync.cli.collection import print_report
from idsync.cli.common import confirm, print_document, workspace
from idsync.cli.output import FormatOption, JsonOption, UtcOption, console, print_json, table, when
from idsync.cli.review_view import confirmed
from idsync.cli.trigger_options import (
    AT,
    CRON,
    DAILY,
    EVERY,
    EXPIRES,
    FILE,
    MONTHLY_DAY,
    MONTHLY_ORDINAL,
    MONTHS,
    ONCE,
    REPEAT_EVERY,
    REPEAT_FOR,
    START,
    STARTUP,
    STOP_AFTER,
    TZ,
    WEEKLY,
    trigger_options,
)
from idsync.errors import ConfigError
from idsync.services import schedules, yamlio
from idsync.services.schedule_edits import ScheduleEdit, edit_schedule, new_schedule
from idsync.services.workspace import Workspace

app = typer.Typer(help="Schedules: when collections run (several triggers each).", no_args_is_help=True)

YesOption = typer.Option(False, "--yes", "-y", help="Save without asking (for scripts).")


def _review_save(ws: Workspace, schedule: Any, *, yes: bool, json: bool) -> dict[str, Any]:
    review = schedules.review_changes(ws, schedule)
    outcome = schedules.save_schedule(ws, schedule) if confirmed(review, yes=yes, json=json) else "unchanged"
    if not json:
        console.print(f"schedule {schedule.name!r} {outcome}", markup=False)
    return {"schedule": schedule.name, "outcome": outcome, "review": review}


@app.command("create")
def create(
    name: str | None = typer.Argument(None, help="Name of the schedule (with --file: only this one of the file)."),
    daily: bool = DAILY, weekly: str | None = WEEKLY, monthly_day: str | None = MONTHLY_DAY,
    monthly_ordinal: str | None = MONTHLY_ORDINAL, months: str | None = MONTHS, once: str | None = ONCE,
    cron: str | None = CRON, startup: bool = STARTUP, every: int | None = EVERY, at: str | None = AT,
    start: str | None = START, file: Path | None = FILE, tz: str = TZ, expires: str | None = EXPIRES,
    repeat_every: str | None = REPEAT_EVERY, repeat_for: str | None = REPEAT_FOR, stop_after: str | None = STOP_AFTER,
    description: str = typer.Option("", help="What the schedule is for."),
    misfire: str = typer.Option("run_once", help="Missed runs (no scheduler running): run_once or skip."),
    grace: str = typer.Option("1h", help="How late a run may still start before it counts as missed."),
    disabled: bool = typer.Option(False, "--disabled", help="Create it disabled."),
    yes: bool = YesOption,
    json: bool = JsonOption,
) -> None:
    """Create a schedule from trigger options, or schedules from a YAML file.

    Give one trigger (--daily, --weekly, ...) or --file FILE; review, confirm,
    save. Attach it with `idsync collection edit COLLECTION --schedule NAME`."""
    ws = workspace()
    options = trigger_options(daily, weekly, monthly_day, monthly_ordinal, months, once, cron, startup, every, at,
                               start, tz, expires, repeat_every, repeat_for, stop_after)
    if file is not None and options.given:
        raise ConfigError("give either --file or trigger options, not both")
    if not options.given:
        if file is None:
            if not sys.stdin.isatty():
                raise ConfigError("give a trigger (--daily, --weekly, --monthly-day, --monthly-ordinal, --once, --cron, --startup) or --file FILE (or run in a terminal to be asked)")
            from idsync.cli.schedule_wizard import ask_schedule

            items = [ask_schedule(ws, name)]
        else:
            items = yamlio.read_definitions(file, "schedule", name=name)
    else:
        if name is None:
            raise ConfigError("give the schedule's name: idsync schedule create NAME --daily --at 02:00")
        items = [new_schedule(
            name, options.trigger(), description=description, enabled=not disabled, misfire=misfire, grace=grace
        )]
    results = [_review_save(ws, schedule, yes=yes, json=json) for schedule in items]
    if json:
        print_json(results)


@app.command("edit")
def edit(
    name: str = typer.Argument(..., help="The schedule to change."),
    daily: bool = DAILY, weekly: str | None = WEEKLY, monthly_day: str | None = MONTHLY_DAY,
    monthly_ordinal: str | None = MONTHLY_ORDINAL, months: str | None = MONTHS, once: str | None = ONCE,
    cron: str | None = CRON, startup: bool = STARTUP, every: int | None = EVERY, at: str | None = AT,
    start: str | None = START, file: Path | None = FILE, tz: str = TZ, expires: str | None = EXPIRES,
    repeat_every: str | None = REPEAT_EVERY, repeat_for: str | None = REPEAT_FOR, stop_after: str | None = STOP_AFTER,
    replace_triggers: bool = typer.Option(False, "--replace-triggers", help="The trigger given replaces all triggers (default: it is added)."),
    remove_trigger: int | None = typer.Option(None, "--remove-trigger", help="Remove trigger N (1-based, as in `schedule show`)."),
    enable_trigger: int | None = typer.Option(None, "--enable-trigger", help="Enable trigger N."),
    disable_trigger: int | None = typer.Option(None, "--disable-trigger", help="Disable trigger N."),
    description: str | None = typer.Option(None, help="New description."),
    misfire: str | None = typer.Option(None, help="run_once or skip."),
    grace: str | None = typer.Option(None, help="How late a run may still start (e.g. 30m)."),
    yes: bool = YesOption,
    json: bool = JsonOption,
) -> None:
    """Change a schedule's triggers or settings, or replace it from a YAML file.

    Add, replace, remove, enable or disable triggers, or change its settings;
    with --file FILE, replace the whole definition. Review, confirm, save."""
    ws = workspace()
    _id, current = schedules.load_schedule(ws, name)
    options = trigger_options(daily, weekly, monthly_day, monthly_ordinal, months, once, cron, startup, every, at,
                               start, tz, expires, repeat_every, repeat_for, stop_after)
    if file is not None and options.given:
        raise ConfigError("give either --file or trigger options, not both")
    if file is not None:
        updated = yamlio.read_definitions(file, "schedule", name=name, alone=True)[0]
    else:
        if replace_triggers and not options.given:
            raise ConfigError("--replace-triggers needs a trigger option (--daily, --weekly, ...)")
        updated = edit_schedule(current, ScheduleEdit(
            add=options.trigger() if options.given else None, replace_triggers=replace_triggers,
            remove=remove_trigger, enable=enable_trigger, disable=disable_trigger,
            description=description, misfire=misfire, grace=grace,
        ))
    result = _review_save(ws, updated, yes=yes, json=json)
    if json:
        print_json(result)


@app.command("list")
def list_(fmt: str = FormatOption, utc: bool = UtcOption, json: bool = JsonOption) -> None:
    """List schedules with their triggers, next run, last run and targets.

    The next run is shown in the zone of the trigger that fires it; the last
    run in this computer's zone (or UTC with --utc)."""
    items = schedules.status(workspace())
    if json:
        print_json(items)
        return
    table(None, ["name", "enabled", "next run", "last run", "targets", "triggers"], [
        (s.name, "yes" if s.enabled else "no",
         s.next_run_text or ("at scheduler start" if s.startup else ""),
         f"{when(s.last_run, utc)} ({s.last_state})" if s.last_run else "",
         ", ".join(s.targets), "; ".join(s.triggers))
        for s in items
    ], fmt)


@app.command("show")
def show(
    name: str,
    count: int = typer.Option(5, help="How many next runs to show."),
    since: str | None = typer.Option(
        None, "--from",
        help="List the runs due from this instant on: YYYY-MM-DD[THH:MM] in the schedule's zone, or with an offset.",
    ),
    utc: bool = UtcOption,
    json: bool = JsonOption,
) -> None:
    """Show a schedule: definition, triggers, next runs, targets, recent occurrences.

    Due times are shown in the zone of the trigger that fires them, named
    (02:00 CET); the last run in this computer's zone (or UTC with --utc)."""
    found = schedules.detail(workspace(), name, count=count, since=since)
    if json:
        print_json(found)
        return
    status = found.status
    print_document(found.definition, json=False)
    for index, text in enumerate(status.triggers, start=1):
        console.print(f"trigger {index}: {text}", markup=False)
    console.print(f"targets: {', '.join(status.targets) or 'none'}", markup=False)
    label = "next runs" if since is None else f"runs from {found.since_text}"
    console.print(f"{label}: {', '.join(found.upcoming_text) or 'none'}", markup=False)
    if status.last_run:
        console.print(f"last run: {when(status.last_run, utc)} ({status.last_state})", markup=False)
    for occurrence, due in zip(found.occurrences, found.occurrence_times, strict=True):
        trigger = occurrence.trigger_index + 1 if occurrence.trigger_index >= 0 else "run-now"
        console.print(f"  {due} trigger {trigger}: {occurrence.state}", markup=False)


def _set_enabled(name: str, enabled: bool, json: bool) -> None:
    outcome = schedules.set_enabled(workspace(), name, enabled)
    if json:
        print_json({"schedule": name, "enabled": enabled, "outcome": outcome})
    else:
        console.print(f"schedule {name!r} {'enabled' if enabled else 'disabled'}" + (" (already)" if outcome == "unchanged" else ""), markup=False)


@app.command("enable")
def enable(name: str, json: bool = JsonOption) -> None:
    """Enable a schedule (runs missed while it was disabled are not caught up)."""
    _set_enabled(name, True, json)


@app.command("disable")
def disable(name: str, json: bool = JsonOption) -> None:
    """Disable a schedule: its triggers do not fire until it is enabled again."""
    _set_enabled(name, False, json)


@app.command("run-now")
def run_now(
    name: str,
    no_send: bool = typer.Option(
        False, "--no-send", help="Leave the runs' notifications in the outbox for a scheduler or an outbox sender."
    ),
    json: bool = JsonOption,
) -> None:
    """Start every collection of the schedule now, in this process, wait for them, and deliver their notifications."""
    from idsync.runtime.node import deliver_run, run_schedule_now

    ws = workspace()
    reports = run_schedule_now(ws, name)
    if json:
        print_json(reports)
    else:
        for report in reports:
            print_report(report)
    if not no_send:
        for report in reports:
            delivery = deliver_run(ws, report.run.id)
            if not json:
                console.print(delivery.summary(), markup=False, soft_wrap=True)
    if any(r.run.state.value == "awaiting_approval" for r in reports):
        raise typer.Exit(5)
    if any(r.run.state.value not in ("succeeded", "completed_with_errors") for r in reports):
        raise typer.Exit(
            4 if any(r.run.state.value == "failed" for r in reports)
            else 9 if any(r.run.state.value == "terminated" for r in reports) else 1
        )


@app.command("remove")
def remove(
    name: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json: bool = JsonOption,
) -> None:
    """Remove a schedule; refused while a collection uses it."""
    ws = workspace()
    schedules.load_schedule(ws, name)
    schedules.check_removable(ws, name)  # before asking: no question for a refusal
    confirm(f"Remove schedule {name!r}?", yes)
    schedules.remove_schedule(ws, name)
    if json:
        print_json({"schedule": name, "outcome": "removed"})
    else:
        console.print(f"schedule {name!r} removed", markup=False)
