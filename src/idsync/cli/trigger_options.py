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

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from idsync.errors import ConfigError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ORDINALS = ("first", "second", "third", "fourth", "last")


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
        self.weekly, self.monthly_day, self.monthly_ordinal, self.months = weekly, monthly_day, monthly_ordinal, months
        self.once, self.cron, self.every, self.at, self.start, self.tz = once, cron, every, at, start, tz
        self.expires, self.repeat_every, self.repeat_for, self.stop_after = expires, repeat_every, repeat_for, stop_after

    @property
    def given(self) -> bool:
        return bool(self.kinds)

    def trigger(self) -> dict[str, Any]:
        """The trigger as definition data; ConfigError naming the option on bad input."""
        if len(self.kinds) != 1:
            raise ConfigError(
                "give exactly one of --daily, --weekly, --monthly-day, --monthly-ordinal, --once, --cron, --startup"
            )
        kind = self.kinds[0]
        zone = _zone(self.tz)
        data: dict[str, Any] = {"kind": kind, "timezone": self.tz}
        if kind == "once":
            assert self.once is not None
            data["start"] = _datetime(self.once, "--once").isoformat()
        elif kind != "startup":
            data["start"] = self._start(zone, kind).isoformat()
        elif self.start is not None:
            data["start"] = _datetime(self.start, "--start").isoformat()
        if self.every is not None:
            if kind not in ("daily", "weekly"):
                raise ConfigError("--every goes with --daily (days) or --weekly (weeks)")
            data["every_days" if kind == "daily" else "every_weeks"] = self.every
        if kind == "weekly":
            assert self.weekly is not None
            data["weekdays"] = _weekdays(self.weekly)
        if kind == "monthly":
            if self.monthly_day is not None:
                data["days"] = _days(self.monthly_day)
            else:
                assert self.monthly_ordinal is not None
                data["ordinal"] = _ordinal(self.monthly_ordinal)
            if self.months is not None:
                data["months"] = _numbers(self.months, "--months")
        elif self.months is not None:
            raise ConfigError("--months goes with --monthly-day or --monthly-ordinal")
        if kind == "cron":
            data["expression"] = self.cron
        if self.expires is not None:
            data["expires"] = _datetime(self.expires, "--expires").isoformat()
        for key, value in (("repeat_every", self.repeat_every), ("repeat_for", self.repeat_for), ("stop_after", self.stop_after)):
            if value is not None:
                data[key] = value
        return data

    def _start(self, zone: ZoneInfo, kind: str) -> datetime:
        """--start (a date, or a date and time) with --at; default: today, in the trigger's zone."""
        today = datetime.now(UTC).astimezone(zone)
        at = _time(self.at) if self.at is not None else None
        if self.start is not None:
            start = _datetime(self.start, "--start")
            if at is not None:
                start = datetime.combine(start.date(), at)
            return start
        if kind == "cron":
            return today.replace(tzinfo=None, second=0, microsecond=0)
        return datetime.combine(today.date(), at or time(0, 0))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)") from exc


def _datetime(text: str, option: str) -> datetime:
    """YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], naive (local to the trigger's zone)."""
    try:
        if len(text.strip()) == 10:
            return datetime.combine(date.fromisoformat(text.strip()), time(0, 0))
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r} is not a valid date: {exc} (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from exc
    if value.tzinfo is not None:
        raise ConfigError(f"{option} {text!r}: give a local time without offset, and the zone with --tz")
    return value


def _time(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(f"--at {text!r} is not a time of day (expected HH:MM)") from exc


def _weekdays(text: str) -> list[str]:
    days = [d.strip().lower()[:3] for d in text.split(",") if d.strip()]
    unknown = [d for d in days if d not in WEEKDAYS]
    if unknown:
        raise ConfigError(f"--weekly: {unknown[0]!r} is not a weekday (use {','.join(WEEKDAYS)})")
    return days


def _numbers(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r}: expected numbers separated by commas") from exc


def _days(text: str) -> list[int | str]:
    out: list[int | str] = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part == "last":
            out.append("last")
        elif part.isdigit():
            out.append(int(part))
        else:
            raise ConfigError(f"--monthly-day: {part!r} is not a day of the month (1 to 31, or last)")
    return out


def _ordinal(text: str) -> dict[str, str]:
    week, _, day = text.strip().lower().partition(":")
    if week not in ORDINALS or day[:3] not in WEEKDAYS:
        raise ConfigError(f"--monthly-ordinal {text!r}: expected WEEK:DAY, e.g. last:fri or first:mon")
    return {"week": week, "weekday": day[:3]}


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
