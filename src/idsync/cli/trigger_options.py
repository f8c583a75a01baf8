"""The options that describe one schedule trigger on the command line.

``idsync schedule create`` and ``edit`` share them: ``--daily``,
``--weekly mon,thu``, ``--monthly-day 1,15,last``, ``--monthly-ordinal
last:fri``, ``--once``, ``--cron``, ``--startup`` with ``--every``, ``--at``,
``--start``, ``--tz``, ``--months``, ``--expires``, ``--repeat-every``,
``--repeat-for`` and ``--stop-after``. They become the trigger's definition
data; the schedule model then validates it (30 February, an unknown zone,
an expiry before the start are refused there with one line).
"""

from __future__ import annotations

from typing import Any

import typer

from idsync.errors import ConfigError
from idsync.services.trigger_answers import TriggerAnswers, trigger_data

CLI_LABELS = {
    "weekly": "--weekly", "monthly_day": "--monthly-day", "monthly_ordinal": "--monthly-ordinal",
    "months": "--months", "once": "--once", "every": "--every", "at": "--at", "start": "--start",
    "tz": "--tz", "expires": "--expires",
}
"""Errors about a trigger's text name the option it came from."""


class TriggerOptions:
    """The options that describe one trigger, shared by create and edit."""

    def __init__(
        self,
        *,
        daily: bool,
        weekly: str | None,
        monthly_day: str | None,
        monthly_ordinal: str | None,
        months: str | None,
        once: str | None,
        cron: str | None,
        startup: bool,
        every: int | None,
        at: str | None,
        start: str | None,
        tz: str,
        expires: str | None,
        repeat_every: str | None,
        repeat_for: str | None,
        stop_after: str | None,
    ) -> None:
        self.kinds = [
            kind
            for kind, given in (
                ("daily", daily),
                ("weekly", weekly is not None),
                ("monthly", monthly_day is not None),
                ("monthly", monthly_ordinal is not None),
                ("once", once is not None),
                ("cron", cron is not None),
                ("startup", startup),
            )
            if given
        ]
        self.answers = TriggerAnswers(
            kind=self.kinds[0] if self.kinds else "", weekly=weekly, monthly_day=monthly_day,
            monthly_ordinal=monthly_ordinal, months=months, once=once, cron=cron, every=every, at=at, start=start,
            tz=tz, expires=expires, repeat_every=repeat_every, repeat_for=repeat_for, stop_after=stop_after,
        )

    @property
    def given(self) -> bool:
        return bool(self.kinds)

    def trigger(self) -> dict[str, Any]:
        """The trigger as definition data; ConfigError naming the option on bad input."""
        if len(self.kinds) != 1:
            raise ConfigError(
                "give exactly one of --daily, --weekly, --monthly-day, --monthly-ordinal, --once, --cron, --startup"
            )
        return trigger_data(self.answers, CLI_LABELS)


def trigger_options(
    daily: bool, weekly: str | None, monthly_day: str | None, monthly_ordinal: str | None, months: str | None,
    once: str | None, cron: str | None, startup: bool, every: int | None, at: str | None, start: str | None,
    tz: str, expires: str | None, repeat_every: str | None, repeat_for: str | None, stop_after: str | None,
) -> TriggerOptions:
    return TriggerOptions(
        daily=daily, weekly=weekly, monthly_day=monthly_day, monthly_ordinal=monthly_ordinal, months=months,
        once=once, cron=cron, startup=startup, every=every, at=at, start=start, tz=tz, expires=expires,
        repeat_every=repeat_every, repeat_for=repeat_for, stop_after=stop_after,
    )


# Options of a trigger, declared once for create and edit.
DAILY = typer.Option(False, "--daily", help="Every day (every N days with --every N).")
WEEKLY = typer.Option(None, "--weekly", help="On these weekdays, e.g. mon,thu (every N weeks with --every N).")
MONTHLY_DAY = typer.Option(None, "--monthly-day", help="On these days of the month, e.g. 1,15,last.")
MONTHLY_ORDINAL = typer.Option(None, "--monthly-ordinal", help="On an ordinal weekday, e.g. last:fri, first:mon.")
MONTHS = typer.Option(None, "--months", help="Only in these months (1-12, comma-separated) for monthly triggers.")
ONCE = typer.Option(None, "--once", help="Once, at YYYY-MM-DDTHH:MM.")
CRON = typer.Option(None, "--cron", help='A cron expression, e.g. "*/15 * * * *".')
STARTUP = typer.Option(False, "--startup", help="When the scheduler starts.")
EVERY = typer.Option(None, "--every", help="Every N days (--daily) or weeks (--weekly).")
AT = typer.Option(None, "--at", help="Time of day, HH:MM (default 00:00).")
START = typer.Option(None, "--start", help="The trigger's first day, YYYY-MM-DD[THH:MM] (default today).")
FILE = typer.Option(None, "--file", "-f", help="A YAML file with the schedule definitions (instead of trigger options).")
TZ = typer.Option("UTC", "--tz", help="IANA time zone of the times, e.g. Europe/Paris.")
EXPIRES = typer.Option(None, "--expires", help="Nothing runs at or after this local date and time.")
REPEAT_EVERY = typer.Option(None, "--repeat-every", help="Repeat every X (e.g. 15m) ... (with --repeat-for).")
REPEAT_FOR = typer.Option(None, "--repeat-for", help="... for a duration of Y (e.g. 8h).")
STOP_AFTER = typer.Option(None, "--stop-after", help="Stop the run if it runs longer than this (e.g. 2h).")
