"""One schedule trigger from a front end's answers, as a person types them.

The command line (``--weekly mon,thu --at 02:00 --tz Europe/Berlin``), its
interactive wizard and the portal's trigger form all ask the same things:
the kind, weekdays as ``mon,thu``, days as ``1,15,last``, a time as
``02:00``, a local date and time as ``2026-12-24T18:00``. They become the
trigger's definition data here, once, so every front end accepts and refuses
the same text. The schedule model validates the result (30 February, an
expiry before the start); this module only reads the text, and names the
front end's own label for a field in its one-line errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from idsync.errors import ConfigError

KINDS = ("daily", "weekly", "monthly", "once", "cron", "startup")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ORDINALS = ("first", "second", "third", "fourth", "last")

LABELS: Mapping[str, str] = {
    "weekly": "weekdays", "monthly_day": "days of the month", "monthly_ordinal": "ordinal weekday",
    "months": "months", "once": "date and time", "every": "every", "at": "time of day", "start": "first day",
    "tz": "time zone", "expires": "expires",
}
"""How a field is named in errors unless the front end names it otherwise."""


@dataclass(frozen=True)
class TriggerAnswers:
    """The answers for one trigger, as text; only those of *kind* are read.

    *monthly_day* and *monthly_ordinal* are two ways of saying ``monthly``:
    give one of them."""

    kind: str
    weekly: str | None = None
    monthly_day: str | None = None
    monthly_ordinal: str | None = None
    months: str | None = None
    once: str | None = None
    cron: str | None = None
    every: int | None = None
    at: str | None = None
    start: str | None = None
    tz: str = "UTC"
    expires: str | None = None
    repeat_every: str | None = None
    repeat_for: str | None = None
    stop_after: str | None = None


def trigger_data(answers: TriggerAnswers, labels: Mapping[str, str] = LABELS) -> dict[str, Any]:
    """The trigger as definition data; ConfigError naming the field (by *labels*) on bad text."""
    label = {**LABELS, **labels}
    kind = answers.kind
    if kind not in KINDS:
        raise ConfigError(f"unknown kind of trigger {kind!r} (use one of {', '.join(KINDS)})", field="kind")
    tz = answers.tz.strip() or "UTC"
    zone = time_zone(tz)
    data: dict[str, Any] = {"kind": kind, "timezone": tz}
    if kind == "once":
        if not answers.once:
            raise ConfigError(f"a one-time trigger needs its {label['once']} (YYYY-MM-DDTHH:MM)", field="once")
        data["start"] = local_datetime(answers.once, label["once"]).isoformat()
    elif kind != "startup":
        data["start"] = _start(answers, zone, label).isoformat()
    elif answers.start:
        data["start"] = local_datetime(answers.start, label["start"]).isoformat()
    if answers.every is not None:
        if kind not in ("daily", "weekly"):
            raise ConfigError(f"{label['every']} goes with a daily (days) or weekly (weeks) trigger", field="every")
        data["every_days" if kind == "daily" else "every_weeks"] = answers.every
    if kind == "weekly":
        data["weekdays"] = weekdays(answers.weekly or "", label["weekly"])
    if kind == "monthly":
        if answers.monthly_day and answers.monthly_ordinal:
            raise ConfigError(f"give {label['monthly_day']} or {label['monthly_ordinal']}, not both", field="monthly_day")
        if answers.monthly_day:
            data["days"] = month_days(answers.monthly_day, label["monthly_day"])
        elif answers.monthly_ordinal:
            data["ordinal"] = ordinal(answers.monthly_ordinal, label["monthly_ordinal"])
        else:
            raise ConfigError(f"a monthly trigger needs {label['monthly_day']} or {label['monthly_ordinal']}",
                              field="monthly_day")
        if answers.months:
            data["months"] = numbers(answers.months, label["months"])
    elif answers.months:
        raise ConfigError(f"{label['months']} goes with a monthly trigger", field="months")
    if kind == "cron":
        if not answers.cron:
            raise ConfigError('a cron trigger needs its expression, e.g. "0 2 * * *"', field="cron")
        data["expression"] = answers.cron
    if answers.expires:
        data["expires"] = local_datetime(answers.expires, label["expires"]).isoformat()
    for key, value in (("repeat_every", answers.repeat_every), ("repeat_for", answers.repeat_for),
                       ("stop_after", answers.stop_after)):
        if value:
            data[key] = value
    return data


def _start(answers: TriggerAnswers, zone: ZoneInfo, label: Mapping[str, str]) -> datetime:
    """The first day (a date, or a date and time) with the time of day; default: today, in the trigger's zone."""
    today = datetime.now(UTC).astimezone(zone)
    at = time_of_day(answers.at, label["at"]) if answers.at else None
    if answers.start:
        start = local_datetime(answers.start, label["start"])
        return datetime.combine(start.date(), at) if at is not None else start
    if answers.kind == "cron":
        return today.replace(tzinfo=None, second=0, microsecond=0)
    return datetime.combine(today.date(), at or time(0, 0))


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone *name*; ConfigError with an example when unknown."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)", field="tz") from exc


def local_datetime(text: str, label: str) -> datetime:
    """YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], naive: local to the trigger's zone."""
    try:
        if len(text.strip()) == 10:
            return datetime.combine(date.fromisoformat(text.strip()), time(0, 0))
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(
            f"{label} {text!r} is not a valid date: {exc} (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM)"
        ) from exc
    if value.tzinfo is not None:
        raise ConfigError(f"{label} {text!r}: give a local time without offset, and the time zone apart")
    return value


def time_of_day(text: str, label: str = LABELS["at"]) -> time:
    """HH:MM[:SS]."""
    try:
        return time.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(f"{label} {text!r} is not a time of day (expected HH:MM)") from exc


def weekdays(text: str, label: str = LABELS["weekly"]) -> list[str]:
    """``mon,thu`` (or longer names) as weekday keys, at least one."""
    days = [d.strip().lower()[:3] for d in text.split(",") if d.strip()]
    unknown = [d for d in days if d not in WEEKDAYS]
    if unknown:
        raise ConfigError(f"{label}: {unknown[0]!r} is not a weekday (use {','.join(WEEKDAYS)})")
    if not days:
        raise ConfigError(f"{label}: give at least one weekday (use {','.join(WEEKDAYS)})")
    return days


def numbers(text: str, label: str) -> list[int]:
    """``1,4,7`` as numbers."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"{label} {text!r}: expected numbers separated by commas") from exc


def month_days(text: str, label: str = LABELS["monthly_day"]) -> list[int | str]:
    """``1,15,last`` as days of the month."""
    out: list[int | str] = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part == "last":
            out.append("last")
        elif part.isdigit():
            out.append(int(part))
        else:
            raise ConfigError(f"{label}: {part!r} is not a day of the month (1 to 31, or last)")
    return out


def ordinal(text: str, label: str = LABELS["monthly_ordinal"]) -> dict[str, str]:
    """``last:fri`` as an ordinal weekday of the month."""
    week, _, day = text.strip().lower().partition(":")
    if week not in ORDINALS or day[:3] not in WEEKDAYS:
        raise ConfigError(f"{label} {text!r}: expected WEEK:DAY, e.g. last:fri or first:mon")
    return {"week": week, "weekday": day[:3]}
