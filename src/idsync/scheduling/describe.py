"""One-line descriptions of triggers, for lists and logs.

"weekly every 2 weeks on Mon, Thu at 09:00 Europe/London from 2027-01-04"
says what a trigger does without the reader knowing the YAML fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from idsync.domain.schedules import (
    MONTH_NAMES,
    CronTrigger,
    DailyTrigger,
    MonthlyTrigger,
    OnceTrigger,
    StartupTrigger,
    Trigger,
    WeeklyTrigger,
    format_duration,
)


def describe(trigger: Trigger) -> str:
    """A one-line human description of when *trigger* fires, with its options
    (whether it is enabled is left to the caller to show)."""
    text = _what(trigger)
    if trigger.repeat_every is not None and trigger.repeat_for is not None:
        text += f", repeating every {format_duration(trigger.repeat_every)} for {format_duration(trigger.repeat_for)}"
    if trigger.expires is not None:
        text += f", until {_moment(trigger.expires)}"
    if trigger.stop_after is not None:
        text += f", stopping a run after {format_duration(trigger.stop_after)}"
    return text


def _what(trigger: Trigger) -> str:
    zone = trigger.timezone
    if isinstance(trigger, StartupTrigger):
        since = f" from {_moment(trigger.start)} {zone}" if trigger.start is not None else ""
        return f"at scheduler start-up{since}"
    start = trigger.start
    if isinstance(trigger, OnceTrigger):
        return f"once at {_moment(start)} {zone}"
    if isinstance(trigger, CronTrigger):
        return f"cron '{trigger.expression}' in {zone} from {_moment(start)}"
    at = f"at {_clock(start)} {zone} from {start:%Y-%m-%d}"
    if isinstance(trigger, DailyTrigger):
        every = f" every {trigger.every_days} days" if trigger.every_days > 1 else ""
        return f"daily{every} {at}"
    if isinstance(trigger, WeeklyTrigger):
        every = f" every {trigger.every_weeks} weeks" if trigger.every_weeks > 1 else ""
        days = ", ".join(day.capitalize() for day in trigger.weekdays)
        return f"weekly{every} on {days} {at}"
    return f"monthly {_monthly_days(trigger)}{_months(trigger)} {at}"


def _monthly_days(trigger: MonthlyTrigger) -> str:
    if trigger.ordinal is not None:
        return f"on the {trigger.ordinal.week} {trigger.ordinal.weekday.capitalize()}"
    days = [str(day) for day in trigger.days or ()]
    return ("on day " if len(days) == 1 else "on days ") + ", ".join(days)


def _months(trigger: MonthlyTrigger) -> str:
    if sorted(trigger.months) == list(range(1, 13)):
        return ""
    return " of " + ", ".join(MONTH_NAMES[month][:3] for month in sorted(trigger.months))


def _clock(moment: datetime) -> str:
    return f"{moment:%H:%M:%S}" if moment.second else f"{moment:%H:%M}"


def _moment(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d} {_clock(moment)}"


def moment_in_zone(moment: datetime, zone: str) -> str:
    """An instant as the wall-clock time of *zone*, with the zone's
    abbreviation for that date: ``2027-01-05 02:00 CET`` (``CEST`` in summer).

    Schedule times are read in the schedule's own zone: "02:00 CET" is what
    the admin typed, "01:00:00" (the same instant in UTC, unlabelled) is not.
    A naive *moment* is taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    local = aware.astimezone(ZoneInfo(zone))
    return f"{_moment(local)} {local.tzname() or zone}"
