"""Schedules: named, reusable sets of triggers that start collections and jobs.

A schedule has one or more triggers; any enabled trigger starts its targets.
Trigger times are wall-clock times in the trigger's IANA time zone, so that
"daily at 09:00 Europe/London" stays at 09:00 across daylight saving time;
:mod:`idsync.scheduling.triggers` turns them into UTC instants.

These models check structure only and are pure data: they are what users
write in YAML, what the database stores as JSON and what ``idsync export``
writes back. Durations are written and exported in a short text form
(``90s``, ``15m``, ``1h30m``, ``2d``).

A trigger runs at most once a minute on average: repeats are at least
:data:`SHORTEST_REPEAT` apart and last at most :data:`LONGEST_REPEATS`, and
a cron trigger with repeats may not add up to more than
:data:`MOST_RUNS_PER_DAY` runs a day. Each run is a row of history and a
run of every target collection; a trigger running every second would bury
both (and what a scheduler that was down for a while has to catch up on).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from idsync.domain.definitions import DefinitionModel, Name
from idsync.domain.durations import Duration, format_duration, parse_duration

__all__ = ["Duration", "format_duration", "parse_duration"]

SHORTEST_REPEAT = timedelta(minutes=1)
"""The shortest ``repeat_every``."""
LONGEST_REPEATS = timedelta(days=1)
"""The longest ``repeat_for``: runs on several days are a trigger's own rule."""
MOST_RUNS_PER_DAY = 1440
"""The most runs a trigger may make in a day, repeats included: once a minute."""

# ---------------------------------------------------------------- calendar words

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekdays in Python's order: ``WEEKDAYS[d.weekday()]``."""

Ordinal = Literal["first", "second", "third", "fourth", "last"]
MONTH_NAMES: tuple[str, ...] = (
    "", "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)
"""``MONTH_NAMES[1]`` is January (index 0 is empty), independent of the locale."""
MAX_DAYS: tuple[int, ...] = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
"""The most days each month can have (February in a leap year)."""


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone *name*; ValueError naming it when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/London or UTC)") from exc


def _parse_local(value: Any, zone_name: str | None) -> Any:
    """A naive wall-clock time from text, a date or a datetime.

    Text is parsed here (not by pydantic) so that an impossible date such as
    30 February gets a message that says what to write instead. An aware
    time is converted to the trigger's zone, then made naive: the field
    always holds the wall-clock time in that zone.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError as exc:
            reason = _date_problem(text)
            raise ValueError(
                f"{value!r} is not a valid date and time{reason}; "
                "write YYYY-MM-DDTHH:MM, a wall-clock time in the trigger's time zone"
            ) from exc
    elif isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        raise ValueError(f"{value!r} is not a date and time; write YYYY-MM-DDTHH:MM")
    if parsed.tzinfo is not None:
        zone = ZoneInfo(zone_name) if zone_name else UTC
        parsed = parsed.astimezone(zone).replace(tzinfo=None)
    return parsed.replace(microsecond=0, fold=0)


def _date_problem(text: str) -> str:
    """Why a YYYY-MM-DD prefix is not a date ("30 February does not exist"), or ""."""
    match = re.match(r"^(\d{4})-(\d{2})-(\d{2})", text)
    if not match:
        return ""
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12:
        return f" (there is no month {month})"
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        return f" ({day} {MONTH_NAMES[month]} {year} does not exist: {MONTH_NAMES[month]} has {last} days)"
    return ""


# ---------------------------------------------------------------- triggers


class _Trigger(DefinitionModel):
    """Fields every trigger has. Times are naive wall-clock times in ``timezone``."""

    kind: str
    enabled: bool = True
    timezone: str = "UTC"
    start: datetime | None = None
    expires: datetime | None = Field(default=None, description="nothing runs at or after this wall-clock time")
    repeat_every: Duration | None = Field(default=None, description="repeat each run this often...")
    repeat_for: Duration | None = Field(default=None, description="...for this long after it")
    stop_after: Duration | None = Field(default=None, description="stop a run that runs longer than this")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        load_zone(value)
        return value

    @field_validator("start", "expires", mode="before")
    @classmethod
    def _wall_clock(cls, value: Any, info: ValidationInfo) -> Any:
        zone = info.data.get("timezone")
        return _parse_local(value, zone if isinstance(zone, str) else None)

    @field_validator("expires")
    @classmethod
    def _after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if value is not None and isinstance(start, datetime) and value <= start:
            raise ValueError(f"expires ({value:%Y-%m-%d %H:%M}) must be after start ({start:%Y-%m-%d %H:%M})")
        return value

    @field_validator("repeat_every")
    @classmethod
    def _not_too_often(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < SHORTEST_REPEAT:
            raise ValueError(
                f"repeat_every {format_duration(value)} is too short: a trigger repeats at most once a minute "
                f"(repeat_every: {format_duration(SHORTEST_REPEAT)} or more)"
            )
        return value

    @field_validator("repeat_for")
    @classmethod
    def _not_too_long(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value > LONGEST_REPEATS:
            raise ValueError(
                f"repeat_for {format_duration(value)} is too long: repeats last at most a day "
                f"(repeat_for: {format_duration(LONGEST_REPEATS)}); to run on more days, "
                "use a daily, weekly or cron trigger"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> _Trigger:
        if (self.repeat_every is None) != (self.repeat_for is None):
            raise ValueError(
                "repeat_every and repeat_for go together: give both "
                "(e.g. repeat_every: 15m, repeat_for: 1h) or neither"
            )
        if self.repeat_every is not None and self.repeat_for is not None and self.repeat_every >= self.repeat_for:
            raise ValueError(
                f"repeat_every ({format_duration(self.repeat_every)}) must be shorter than "
                f"repeat_for ({format_duration(self.repeat_for)})"
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def repeats(self) -> int:
        """How many runs each of the trigger's times makes, its repeats included."""
        if self.repeat_every is None or self.repeat_for is None:
            return 1
        return -(-self.repeat_for // self.repeat_every)  # b, b + every, ... before b + for


class OnceTrigger(_Trigger):
    """Runs once, at ``start``."""

    kind: Literal["once"]
    start: datetime


class DailyTrigger(_Trigger):
    """At start's time of day, every ``every_days`` days counted from start's date."""

    kind: Literal["daily"]
    start: datetime
    every_days: int = Field(default=1, ge=1, le=3660)


class WeeklyTrigger(_Trigger):
    """At start's time of day on each chosen weekday, every ``every_weeks`` weeks.

    Weeks are counted from the Monday-based week that contains start; days of
    that first week before start are not run.
    """

    kind: Literal["weekly"]
    start: datetime
    every_weeks: int = Field(default=1, ge=1, le=520)
    weekdays: list[Weekday]

    @field_validator("weekdays")
    @classmethod
    def _some_days(cls, value: list[Weekday]) -> list[Weekday]:
        if not value:
            raise ValueError("a weekly trigger needs at least one weekday (mon, tue, wed, thu, fri, sat, sun)")
        if len(set(value)) != len(value):
            raise ValueError("a weekday is listed twice")
        return value


class OrdinalDay(DefinitionModel):
    """The first, second, third, fourth or last given weekday of a month."""

    week: Ordinal
    weekday: Weekday


class MonthlyTrigger(_Trigger):
    """At start's time of day on chosen days of chosen months.

    ``days`` are day numbers or ``last``; a day a month does not have (31 in
    April) is not run that month: ``last`` is the way to say "month end".
    ``ordinal`` picks one weekday per month instead (the last Friday).
    """

    kind: Literal["monthly"]
    start: datetime
    months: list[int] = Field(default_factory=lambda: list(range(1, 13)))
    days: list[int | Literal["last"]] | None = None
    ordinal: OrdinalDay | None = None

    @field_validator("months")
    @classmethod
    def _months(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("a monthly trigger needs at least one month (1 to 12)")
        for month in value:
            if not 1 <= month <= 12:
                raise ValueError(f"month {month} does not exist: use 1 (January) to 12 (December)")
        if len(set(value)) != len(value):
            raise ValueError("a month is listed twice")
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int | str] | None, info: ValidationInfo) -> list[int | str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("days is empty: list day numbers (1 to 31) or last, or use ordinal instead")
        for day in value:
            if isinstance(day, int) and not 1 <= day <= 31:
                raise ValueError(f"day {day} does not exist: use 1 to 31, or last")
        if len(set(value)) != len(value):
            raise ValueError("a day is listed twice")
        months = info.data.get("months")
        if isinstance(months, list):
            for day in value:
                if isinstance(day, int) and all(day > MAX_DAYS[m] for m in months):
                    names = ", ".join(MONTH_NAMES[m] for m in sorted(months))
                    raise ValueError(f"day {day} never occurs in {names}: remove it, or use last for the month end")
        return value

    @model_validator(mode="after")
    def _days_or_ordinal(self) -> MonthlyTrigger:
        if (self.days is None) == (self.ordinal is None):
            raise ValueError(
                "a monthly trigger needs exactly one of days (e.g. [1, 15, last]) "
                "or ordinal (e.g. {week: last, weekday: fri})"
                + (" (has both)" if self.days is not None else "")
            )
        return self


class StartupTrigger(_Trigger):
    """Fires when the scheduler starts; ``start``, when given, is the earliest
    start-up that counts."""

    kind: Literal["startup"]


class CronTrigger(_Trigger):
    """A five-field cron expression (minute hour day-of-month month day-of-week)
    evaluated in wall-clock time of ``timezone``, from ``start`` on."""

    kind: Literal["cron"]
    start: datetime
    expression: str

    @field_validator("expression")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from cronsim import CronSim, CronSimError

        fields = value.split()
        if len(fields) != 5:
            raise ValueError(
                f"cron expression {value!r} has {len(fields)} fields; "
                "it needs 5: minute hour day-of-month month day-of-week"
            )
        try:
            next(CronSim(" ".join(fields), datetime(2000, 1, 1)))
        except (CronSimError, StopIteration) as exc:
            reason = str(exc) or "it never occurs"
            raise ValueError(
                f"cron expression {value!r} is not valid: {reason} "
                "(fields: minute hour day-of-month month day-of-week)"
            ) from exc
        return " ".join(fields)

    @model_validator(mode="after")
    def _not_too_many(self) -> CronTrigger:
        if self.repeats > 1 and self.runs_per_day > MOST_RUNS_PER_DAY:
            assert self.repeat_every is not None and self.repeat_for is not None
            raise ValueError(
                f"cron expression {self.expression!r} repeated every {format_duration(self.repeat_every)} "
                f"for {format_duration(self.repeat_for)} runs up to {self.runs_per_day:,} times a day; "
                f"a trigger runs at most {MOST_RUNS_PER_DAY:,} times a day (once a minute): "
                "lengthen repeat_every, shorten repeat_for, or let the expression say when to run"
            )
        return self

    @property
    def runs_per_day(self) -> int:
        """The most runs the trigger makes in a day: the times of day its
        expression picks, times the runs each makes with its repeats."""
        from cronsim import CronSim

        times = CronSim(self.expression, datetime(2000, 1, 1))
        return len(times.minutes) * len(times.hours) * self.repeats


Trigger = Annotated[
    OnceTrigger | DailyTrigger | WeeklyTrigger | MonthlyTrigger | StartupTrigger | CronTrigger,
    Field(discriminator="kind"),
]
TriggerKind = Literal["once", "daily", "weekly", "monthly", "startup", "cron"]

# ---------------------------------------------------------------- schedules


class ScheduleDefinition(DefinitionModel):
    """A named, reusable schedule: any of its enabled triggers starts the
    collections and jobs that use it.

    An occurrence found at most ``grace`` late runs as scheduled. One found
    later (no scheduler ran when it was due) is recorded as missed, and
    ``misfire`` says what follows: ``run_once`` (run the targets once now,
    however many occurrences were missed) or ``skip`` (record them only).
    """

    name: Name
    description: str = ""
    enabled: bool = True
    triggers: list[Trigger]
    misfire: Literal["run_once", "skip"] = "run_once"
    grace: Duration = timedelta(hours=1)

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    @field_validator("triggers")
    @classmethod
    def _some_triggers(cls, value: list[Any]) -> list[Any]:
        if not value:
            raise ValueError("a schedule needs at least one trigger (once, daily, weekly, monthly, startup or cron)")
        return value


def past_one_time_triggers(
    schedule: ScheduleDefinition, now: datetime, stored: ScheduleDefinition | None = None
) -> list[str]:
    """Why each new one-time trigger of *schedule* can never run: its start is
    not after *now* (an aware instant). A saved schedule would keep a trigger
    that never fires, and the admin would wait for a run that never comes.

    A one-time trigger the *stored* version already has, unchanged, is kept
    whatever its time: it ran (or was missed) as scheduled, and editing the
    schedule for another reason must not refuse it. Disabled triggers are not
    checked: they run at no time.
    """
    kept = [t for t in stored.triggers if t.kind == "once"] if stored is not None else []
    reasons = []
    for position, trigger in enumerate(schedule.triggers, start=1):
        if trigger.kind != "once" or not trigger.enabled or trigger in kept:
            continue
        at = trigger.start.replace(tzinfo=trigger.zone)
        if at <= now:
            shown = now.astimezone(trigger.zone)
            reasons.append(
                f"trigger {position} (once at {trigger.start:%Y-%m-%d %H:%M} {trigger.timezone}) is in the past "
                f"(it is {shown:%Y-%m-%d %H:%M} there): it would never run"
            )
    return reasons
