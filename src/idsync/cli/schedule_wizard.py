"""``idsync schedule create`` without a trigger option, in a terminal: the
schedule from answers to questions, each checked as it is given."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import typer

from idsync.cli import wizard
from idsync.cli.trigger_options import CLI_LABELS, trigger_options
from idsync.errors import ConfigError
from idsync.services import answers, schedules, trigger_answers
from idsync.services.schedule_edits import new_schedule
from idsync.services.trigger_answers import (
    local_datetime,
    month_days,
    time_of_day,
    time_zone,
    weekdays,
)
from idsync.services.workspace import Workspace

KINDS = list(trigger_answers.KINDS)
_KIND_TEXT = {
    "daily": "daily, at a time of day",
    "weekly": "weekly, on some weekdays",
    "monthly": "monthly, on some days of the month",
    "once": "once, at a date and time",
    "cron": "a cron expression",
    "startup": "when the scheduler starts",
}


def ask_schedule(ws: Workspace, name: str | None) -> Any:
    """A schedule with one trigger, from answers."""
    name = name or wizard.ask("Name", lambda text: answers.new_name(ws, "schedule", text))
    description = typer.prompt("Description", default="", show_default=False)
    wizard.show_choices("When does it run (by number or name)", [_KIND_TEXT[k] for k in KINDS])
    kind = wizard.ask("Kind", _one_kind)
    tz = wizard.ask("Time zone (IANA name)", _zone_name, default="UTC")
    values: dict[str, Any] = {}
    if kind == "weekly":
        values["weekly"] = ",".join(wizard.ask("Weekdays (comma-separated: mon,tue,wed,thu,fri,sat,sun)",
                                                     lambda text: weekdays(text, CLI_LABELS["weekly"])))
    elif kind == "monthly":
        values["monthly_day"] = wizard.ask("Days of the month (1 to 31, or last; comma-separated)", _checked(lambda text: month_days(text, CLI_LABELS["monthly_day"])))
    if kind in ("daily", "weekly", "monthly"):
        values["at"] = wizard.ask("At (HH:MM)", _checked(lambda text: time_of_day(text, CLI_LABELS["at"])))
    elif kind == "once":
        values["once"] = wizard.ask(
            "At (YYYY-MM-DDTHH:MM)", lambda text: _future_once(name, description, text.strip(), tz)
        )
    elif kind == "cron":
        values["cron"] = wizard.ask('Cron expression (e.g. "0 2 * * *")', lambda text: _cron(name, text.strip(), tz))
    return new_schedule(name, _trigger(kind, tz, values), description=description)


def _zone_name(text: str) -> str:
    time_zone(text.strip())
    return text.strip()


def _checked(check: Callable[[str], object]) -> Callable[[str], str]:
    """The answer as written, once *check* takes it."""

    def run(text: str) -> str:
        check(text)
        return text.strip()

    return run


def _one_kind(text: str) -> str:
    names = wizard.picked(text, KINDS)
    if len(names) != 1 or names[0] not in KINDS:
        raise ConfigError(f"pick one of 1 to {len(KINDS)} ({', '.join(KINDS)})")
    return names[0]


def _trigger(kind: str, tz: str, values: dict[str, Any]) -> dict[str, Any]:
    options = trigger_options(
        kind == "daily", values.get("weekly"), values.get("monthly_day"), None, None, values.get("once"),
        values.get("cron"), kind == "startup", None, values.get("at"), None, tz, None, None, None, None,
    )
    return options.trigger()


def _future_once(name: str, description: str, text: str, tz: str) -> str:
    """A date and time when a one-time trigger can still run."""
    local_datetime(text, "the time")
    schedule = new_schedule(name, _trigger("once", tz, {"once": text}), description=description)
    schedules.check_one_time_ahead(schedule, None, datetime.now(UTC))
    return text


def _cron(name: str, text: str, tz: str) -> str:
    new_schedule(name, _trigger("cron", tz, {"cron": text}))
    return text
