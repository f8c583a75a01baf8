"""When is a trigger due? Pure recurrence over wall-clock time.

A trigger's times are expanded in wall-clock time of its IANA zone (so "daily
at 09:00 Europe/London" stays at 09:00 all year), then turned into UTC
instants with two rules for daylight saving time:

- a wall-clock time that does not exist (spring forward) runs once, shifted
  forward by the length of the gap: 02:30 on a day that jumps from 02:00 to
  03:00 runs at 03:30. If the shifted time is also a time the trigger runs
  at (a cron trigger running every minute, or a day skipped whole), it runs
  once;
- a wall-clock time that occurs twice (fall back) runs once, at its first
  instance.

The functions here read no clock: the caller passes the instants. Calendar
rules come from ``dateutil.rrule``, cron expressions from ``cronsim``; both
are started near the instant asked about, so the cost does not grow with the
age of a trigger, and no rule steps minute by minute.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim
from dateutil.rrule import DAILY, FR, MO, MONTHLY, SA, SU, TH, TU, WE, WEEKLY, rrule

from idsync.domain.schedules import (
    WEEKDAYS,
    CronTrigger,
    DailyTrigger,
    MonthlyTrigger,
    OnceTrigger,
    ScheduleDefinition,
    StartupTrigger,
    Trigger,
    WeeklyTrigger,
)
from idsync.scheduling.describe import describe

__all__ = ["at_startup", "describe", "next_after", "next_for_schedule", "occurrences", "schedule_occurrences"]

_RRULE_DAYS = (MO, TU, WE, TH, FR, SA, SU)
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_LONGEST_GAP = timedelta(hours=25)
"""Longer than any gap a zone has had: Pacific/Apia and Pacific/Kwajalein
skipped one whole day."""


# ---------------------------------------------------------------- public


def next_after(trigger: Trigger, after: datetime) -> datetime | None:
    """The first occurrence strictly after the aware instant *after*, in UTC.

    None when there is none: the trigger is disabled, expired, a one-time
    trigger already past, or a start-up trigger (which has no due times).
    """
    return next(_due(trigger, after), None)


def occurrences(trigger: Trigger, start: datetime, end: datetime) -> Iterator[datetime]:
    """Every occurrence in (*start*, *end*], in UTC, ascending.

    This is how the scheduler finds what was missed while it was down; a
    day of a cron trigger that runs every minute is a few milliseconds.
    """
    _require_aware(end, "end")
    for instant in _due(trigger, start):
        if instant > end:
            return
        yield instant


def schedule_occurrences(schedule: ScheduleDefinition, start: datetime, end: datetime) -> Iterator[tuple[datetime, int]]:
    """Every occurrence of the schedule's triggers in (*start*, *end*], in UTC,
    ascending, with the index of its trigger (the lowest first on a tie).

    Lazy: a scheduler down for a year looks at a year of occurrences one at
    a time, never holding them all."""
    streams = [_indexed(occurrences(trigger, start, end), index) for index, trigger in enumerate(schedule.triggers)]
    return heapq.merge(*streams)


def _indexed(instants: Iterator[datetime], index: int) -> Iterator[tuple[datetime, int]]:
    for instant in instants:
        yield instant, index


def next_for_schedule(schedule: ScheduleDefinition, after: datetime) -> tuple[datetime, int] | None:
    """The schedule's next occurrence after *after* and the index of the
    trigger it comes from (the lowest index on a tie); None if the schedule
    is disabled or none of its triggers is due again."""
    if not schedule.enabled:
        return None
    best: tuple[datetime, int] | None = None
    for index, trigger in enumerate(schedule.triggers):
        due = next_after(trigger, after)
        if due is not None and (best is None or due < best[0]):
            best = (due, index)
    return best


def at_startup(trigger: Trigger, started: datetime) -> list[datetime]:
    """When a start-up trigger runs for a scheduler started at *started*:
    that instant, then its repeats; empty for other kinds, a disabled
    trigger, or a start-up before ``start`` or at or after ``expires``."""
    _require_aware(started, "started")
    if not isinstance(trigger, StartupTrigger) or not trigger.enabled:
        return []
    zone = trigger.zone
    started = started.astimezone(UTC)
    if trigger.start is not None and started < _instant(trigger.start, zone):
        return []
    expiry = _instant(trigger.expires, zone) if trigger.expires is not None else None
    runs = [started]
    if trigger.repeat_every is not None and trigger.repeat_for is not None:
        step = started + trigger.repeat_every
        while step < started + trigger.repeat_for:
            runs.append(step)
            step += trigger.repeat_every
    return [run for run in runs if expiry is None or run < expiry]


# ---------------------------------------------------------------- pipeline


def _due(trigger: Trigger, after: datetime) -> Iterator[datetime]:
    """Occurrences strictly after *after*, ascending, without end (until expiry)."""
    _require_aware(after, "after")
    if not trigger.enabled or isinstance(trigger, StartupTrigger):
        return
    after = after.astimezone(UTC)
    zone = trigger.zone
    floor = _earliest_wall_clock(after, zone)
    stream = _base_instants(trigger, zone, floor - (trigger.repeat_for or timedelta(0)))
    if trigger.repeat_every is not None and trigger.repeat_for is not None:
        stream = _with_repeats(stream, trigger.repeat_every, trigger.repeat_for)
    expiry = _instant(trigger.expires, zone) if trigger.expires is not None else None
    for instant in stream:
        if expiry is not None and instant >= expiry:
            return
        if instant > after:
            yield instant


def _earliest_wall_clock(after: datetime, zone: ZoneInfo) -> datetime:
    """The earliest wall-clock time that can run after *after*.

    That is the wall-clock time of *after* itself, except just after a gap:
    a time inside the gap runs shifted forward by the gap and so can still
    be due. Using the smallest UTC offset of the last day covers that.
    """
    hours = int(_LONGEST_GAP / timedelta(hours=1))
    offsets = [(after - timedelta(hours=back)).astimezone(zone).utcoffset() for back in range(hours + 1)]
    smallest = min(offset for offset in offsets if offset is not None)
    return after.replace(tzinfo=None) + smallest


def _base_instants(trigger: Trigger, zone: ZoneInfo, floor: datetime) -> Iterator[datetime]:
    """The trigger's wall-clock times from *floor* on, as UTC instants,
    strictly ascending.

    Wall-clock times ascend, and so do their instants, except for times in
    a gap: shifted forward, they land among the times after the gap. They
    are held back until the next existing time shows where they belong, and
    dropped when they coincide with one.
    """
    held: list[datetime] = []
    last: datetime | None = None
    for local in _wall_clock_times(trigger, floor):
        instant = local.replace(tzinfo=zone).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) != local:
            heapq.heappush(held, instant)
            continue
        while held and held[0] <= instant:
            early = heapq.heappop(held)
            if early != last:
                last = early
                yield early
        if instant != last:
            last = instant
            yield instant
    while held:
        early = heapq.heappop(held)
        if early != last:
            last = early
            yield early


def _with_repeats(bases: Iterator[datetime], every: timedelta, span: timedelta) -> Iterator[datetime]:
    """Each base instant b expanded to b, b+every, ... while before b+span,
    merged in ascending order (windows of consecutive bases may overlap)."""
    waiting: list[tuple[datetime, datetime]] = []
    last: datetime | None = None

    def release(before: datetime | None) -> Iterator[datetime]:
        nonlocal last
        while waiting and (before is None or waiting[0][0] < before):
            instant, until = heapq.heappop(waiting)
            if instant + every < until:
                heapq.heappush(waiting, (instant + every, until))
            if instant != last:
                last = instant
                yield instant

    for base in bases:
        yield from release(base)
        heapq.heappush(waiting, (base, base + span))
    yield from release(None)


# ---------------------------------------------------------------- wall-clock times


def _wall_clock_times(trigger: Trigger, floor: datetime) -> Iterator[datetime]:
    """Naive wall-clock times of *trigger*, ascending, none before *floor* or start."""
    start = trigger.start
    if start is None or isinstance(trigger, StartupTrigger):
        return
    begin = max(floor, start)
    if isinstance(trigger, OnceTrigger):
        if start >= begin:
            yield start
        return
    if isinstance(trigger, CronTrigger):
        # cronsim yields the times strictly after the one it is given, to the second
        for local in CronSim(trigger.expression, begin - timedelta(seconds=1)):
            if local >= begin:
                yield local
        return
    for local in _calendar_rule(trigger, start, begin):
        if local >= begin:
            yield local


def _calendar_rule(
    trigger: DailyTrigger | WeeklyTrigger | MonthlyTrigger, start: datetime, begin: datetime
) -> rrule:
    """The trigger's rrule, its first instance moved close to *begin* without
    changing which days it selects (the N-day and N-week cycles keep their
    phase from start)."""
    time_of_day = start.time()
    if isinstance(trigger, DailyTrigger):
        cycles = max(0, (begin.date() - start.date()).days // trigger.every_days)
        first = start.date() + timedelta(days=cycles * trigger.every_days)
        return rrule(DAILY, interval=trigger.every_days, dtstart=datetime.combine(first, time_of_day))
    if isinstance(trigger, WeeklyTrigger):
        monday = start.date() - timedelta(days=start.weekday())
        cycles = max(0, (begin.date() - monday).days // 7 // trigger.every_weeks)
        first = monday + timedelta(weeks=cycles * trigger.every_weeks)
        days = [_RRULE_DAYS[WEEKDAYS.index(day)] for day in trigger.weekdays]
        return rrule(
            WEEKLY,
            interval=trigger.every_weeks,
            wkst=MO,
            byweekday=days,
            dtstart=datetime.combine(first, time_of_day),
        )
    month_start = max(begin.date().replace(day=1), start.date().replace(day=1))
    dtstart = datetime.combine(month_start, time_of_day)
    if trigger.ordinal is not None:
        weekday = _RRULE_DAYS[WEEKDAYS.index(trigger.ordinal.weekday)](_ORDINALS[trigger.ordinal.week])
        return rrule(MONTHLY, bymonth=trigger.months, byweekday=weekday, dtstart=dtstart)
    month_days = [-1 if day == "last" else int(day) for day in trigger.days or ()]
    return rrule(MONTHLY, bymonth=trigger.months, bymonthday=month_days, dtstart=dtstart)


# ---------------------------------------------------------------- helpers


def _instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time, by the same rules as occurrences."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (an instant, e.g. in UTC), not {value!r}")
