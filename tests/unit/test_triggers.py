"""Trigger recurrence: hand-checked calendars for every kind, expiry, repeats,
schedules, descriptions and speed."""

from __future__ import annotations

import calendar
import itertools
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter

from idsync.domain.schedules import ScheduleDefinition, Trigger
from idsync.scheduling.triggers import (
    at_startup,
    describe,
    next_after,
    next_for_schedule,
    occurrences,
)

TRIGGER: TypeAdapter[Any] = TypeAdapter(Trigger)


def trigger(**data: Any) -> Any:
    return TRIGGER.validate_python(data)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def days_of(t: Any, start: datetime, end: datetime) -> list[date]:
    return [o.date() for o in occurrences(t, start, end)]


YEAR_2027 = (utc(2026, 12, 31), utc(2027, 12, 31, 23, 59))


# ---------------------------------------------------------------- monthly


def test_last_friday_of_each_month_in_2027() -> None:
    expected = [
        date(2027, 1, 29), date(2027, 2, 26), date(2027, 3, 26), date(2027, 4, 30),
        date(2027, 5, 28), date(2027, 6, 25), date(2027, 7, 30), date(2027, 8, 27),
        date(2027, 9, 24), date(2027, 10, 29), date(2027, 11, 26), date(2027, 12, 31),
    ]
    # the same list from the standard calendar module, independently
    fridays = [
        max(week[calendar.FRIDAY] for week in calendar.monthcalendar(2027, month)) for month in range(1, 13)
    ]
    assert [d.day for d in expected] == fridays
    t = trigger(kind="monthly", start="2027-01-01T09:00", ordinal={"week": "last", "weekday": "fri"})
    found = list(occurrences(t, *YEAR_2027))
    assert [o.date() for o in found] == expected
    assert all(o.hour == 9 and o.minute == 0 and o.tzinfo is UTC for o in found)


def test_first_second_third_fourth_monday_of_march_2027() -> None:
    got = {
        week: days_of(
            trigger(kind="monthly", start="2027-01-01T08:00", months=[3], ordinal={"week": week, "weekday": "mon"}),
            *YEAR_2027,
        )
        for week in ("first", "second", "third", "fourth", "last")
    }
    # March 2027 starts on a Monday: Mondays 1, 8, 15, 22, 29
    assert got == {
        "first": [date(2027, 3, 1)],
        "second": [date(2027, 3, 8)],
        "third": [date(2027, 3, 15)],
        "fourth": [date(2027, 3, 22)],
        "last": [date(2027, 3, 29)],
    }


def test_monthly_on_day_31_skips_months_without_it() -> None:
    t = trigger(kind="monthly", start="2027-01-01T06:00", days=[31])
    assert days_of(t, *YEAR_2027) == [
        date(2027, 1, 31), date(2027, 3, 31), date(2027, 5, 31), date(2027, 7, 31),
        date(2027, 8, 31), date(2027, 10, 31), date(2027, 12, 31),
    ]


def test_last_day_of_february_in_leap_and_common_years() -> None:
    t = trigger(kind="monthly", start="2027-01-01T12:00", days=["last"], months=[2])
    assert days_of(t, utc(2027, 1, 1), utc(2029, 1, 1)) == [date(2027, 2, 28), date(2028, 2, 29)]


def test_day_29_of_february_only_in_leap_years() -> None:
    t = trigger(kind="monthly", start="2025-01-01T12:00", days=[29], months=[2])
    assert days_of(t, utc(2025, 1, 1), utc(2033, 1, 1)) == [date(2028, 2, 29), date(2032, 2, 29)]
    # the next occurrence is found years ahead without fuss
    assert next_after(t, utc(2028, 3, 1)) == utc(2032, 2, 29, 12)


def test_monthly_days_and_last_in_chosen_months_without_duplicates() -> None:
    t = trigger(kind="monthly", start="2027-01-01T00:30", days=[1, 15, 30, "last"], months=[1, 4])
    assert days_of(t, *YEAR_2027) == [
        date(2027, 1, 1), date(2027, 1, 15), date(2027, 1, 30), date(2027, 1, 31),
        date(2027, 4, 1), date(2027, 4, 15), date(2027, 4, 30),  # the 30th is April's last day: once
    ]


def test_monthly_never_before_start() -> None:
    t = trigger(kind="monthly", start="2027-03-15T10:00", days=[1, 15, 20])
    assert days_of(t, utc(2027, 1, 1), utc(2027, 4, 2)) == [
        date(2027, 3, 15), date(2027, 3, 20), date(2027, 4, 1),
    ]


# ---------------------------------------------------------------- weekly


def test_every_two_weeks_on_monday_and_thursday_from_4_january_2027() -> None:
    t = trigger(kind="weekly", start="2027-01-04T09:00", every_weeks=2, weekdays=["mon", "thu"])
    assert days_of(t, utc(2027, 1, 1), utc(2027, 3, 1)) == [
        date(2027, 1, 4), date(2027, 1, 7), date(2027, 1, 18), date(2027, 1, 21),
        date(2027, 2, 1), date(2027, 2, 4), date(2027, 2, 15), date(2027, 2, 18),
    ]


def test_weekly_counts_weeks_from_the_week_of_start_and_skips_days_before_start() -> None:
    # 2027-01-06 is a Wednesday: Monday of that week is not run, Friday is
    t = trigger(kind="weekly", start="2027-01-06T18:30", every_weeks=3, weekdays=["fri", "mon"])
    assert days_of(t, utc(2027, 1, 1), utc(2027, 2, 10)) == [
        date(2027, 1, 8), date(2027, 1, 25), date(2027, 1, 29),
    ]
    # asked from far later, the phase of the three-week cycle is the same
    later = next_after(t, utc(2031, 6, 1))
    assert later is not None
    monday_of_start = date(2027, 1, 4)
    monday_of_later = later.date() - timedelta(days=later.weekday())
    assert (monday_of_later - monday_of_start).days % 21 == 0
    assert later.weekday() in (0, 4) and later.time().isoformat() == "18:30:00"


# ---------------------------------------------------------------- daily and once


def test_daily_every_three_days() -> None:
    t = trigger(kind="daily", start="2027-01-30T07:15", every_days=3, timezone="Europe/Berlin")
    found = list(occurrences(t, utc(2027, 1, 1), utc(2027, 2, 10)))
    assert [o.date() for o in found] == [
        date(2027, 1, 30), date(2027, 2, 2), date(2027, 2, 5), date(2027, 2, 8),
    ]
    assert {o.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") for o in found} == {"07:15"}
    assert found[0] == utc(2027, 1, 30, 6, 15)  # CET is UTC+1


def test_daily_phase_is_kept_far_from_start() -> None:
    t = trigger(kind="daily", start="2000-01-01T00:00", every_days=7)
    after = utc(2027, 5, 5, 12)
    due = next_after(t, after)
    assert due is not None and due > after
    assert (due.date() - date(2000, 1, 1)).days % 7 == 0
    assert due - after <= timedelta(days=7)


def test_once_runs_at_start_and_never_again() -> None:
    t = trigger(kind="once", start="2027-06-01T09:30", timezone="Europe/London")
    assert next_after(t, utc(2027, 1, 1)) == utc(2027, 6, 1, 8, 30)  # BST is UTC+1
    assert next_after(t, utc(2027, 6, 1, 8, 29, 59)) == utc(2027, 6, 1, 8, 30)
    assert next_after(t, utc(2027, 6, 1, 8, 30)) is None  # strictly after
    assert list(occurrences(t, utc(2027, 1, 1), utc(2028, 1, 1))) == [utc(2027, 6, 1, 8, 30)]
    assert list(occurrences(t, utc(2027, 6, 2), utc(2028, 1, 1))) == []


def test_startup_kind_has_no_due_times() -> None:
    t = trigger(kind="startup")
    assert next_after(t, utc(2027, 1, 1)) is None
    assert list(occurrences(t, utc(2027, 1, 1), utc(2028, 1, 1))) == []


def test_startup_runs_at_the_start_up_with_its_repeats() -> None:
    t = trigger(kind="startup", repeat_every="10m", repeat_for="30m", start="2027-01-01T00:00",
                expires="2027-02-01T00:00")
    started = utc(2027, 1, 10, 8, 0, 5)
    assert at_startup(t, started) == [started, started + timedelta(minutes=10), started + timedelta(minutes=20)]
    assert at_startup(t, utc(2026, 12, 31)) == []  # before start
    assert at_startup(t, utc(2027, 2, 1)) == []  # expired
    assert at_startup(trigger(kind="startup", enabled=False), started) == []
    assert at_startup(trigger(kind="daily", start="2027-01-01T00:00"), started) == []


def test_disabled_trigger_is_never_due() -> None:
    t = trigger(kind="daily", start="2027-01-01T09:00", enabled=False)
    assert next_after(t, utc(2027, 1, 1)) is None
    assert list(occurrences(t, utc(2027, 1, 1), utc(2027, 2, 1))) == []


# ---------------------------------------------------------------- cron


def test_cron_every_quarter_hour_in_office_hours_on_weekdays_in_a_zone() -> None:
    t = trigger(kind="cron", start="2027-01-01T00:00", expression="*/15 9-17 * * 1-5", timezone="Europe/Paris")
    # Friday 2027-01-08 to Monday 2027-01-11 in Paris (CET, UTC+1)
    found = list(occurrences(t, utc(2027, 1, 8), utc(2027, 1, 12)))
    paris = [o.astimezone(ZoneInfo("Europe/Paris")) for o in found]
    assert len(found) == 2 * 9 * 4  # two weekdays, hours 9..17, four a hour
    assert {p.date() for p in paris} == {date(2027, 1, 8), date(2027, 1, 11)}
    assert paris[0].strftime("%H:%M") == "09:00" and paris[-1].strftime("%H:%M") == "17:45"
    assert found[0] == utc(2027, 1, 8, 8, 0)
    assert found == sorted(set(found))


def test_cron_never_before_start_and_from_its_wall_clock() -> None:
    t = trigger(kind="cron", start="2027-03-10T12:00", expression="0 12 * * *", timezone="Asia/Tokyo")
    assert next_after(t, utc(2027, 1, 1)) == utc(2027, 3, 10, 3, 0)
    assert next_after(t, utc(2027, 3, 10, 3, 0)) == utc(2027, 3, 11, 3, 0)


def test_cron_with_day_of_month_or_day_of_week() -> None:
    # Standard cron: with both day fields restricted, either one matching is enough.
    t = trigger(kind="cron", start="2027-01-01T00:00", expression="0 0 13 * 5")
    got = days_of(t, utc(2027, 9, 1), utc(2027, 9, 30))
    # Fridays of September 2027, and Monday the 13th
    assert got == [date(2027, 9, 3), date(2027, 9, 10), date(2027, 9, 13), date(2027, 9, 17), date(2027, 9, 24)]


# ---------------------------------------------------------------- expiry and repeats


def test_nothing_runs_at_or_after_expiry() -> None:
    t = trigger(kind="daily", start="2027-01-01T09:00", expires="2027-01-04T09:00", timezone="America/Chicago")
    assert days_of(t, utc(2026, 12, 1), utc(2027, 12, 1)) == [date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)]
    assert next_after(t, utc(2027, 1, 3, 15, 0)) is None
    later = trigger(kind="daily", start="2027-01-01T09:00", expires="2027-01-04T09:00:01", timezone="America/Chicago")
    assert days_of(later, utc(2026, 12, 1), utc(2027, 12, 1))[-1] == date(2027, 1, 4)


def test_repeat_every_15_minutes_for_an_hour() -> None:
    t = trigger(kind="daily", start="2027-01-01T09:00", repeat_every="15m", repeat_for="1h", timezone="Europe/London")
    found = list(occurrences(t, utc(2027, 1, 1), utc(2027, 1, 2, 23)))
    assert found == [
        utc(2027, 1, 1, 9, 0), utc(2027, 1, 1, 9, 15), utc(2027, 1, 1, 9, 30), utc(2027, 1, 1, 9, 45),
        utc(2027, 1, 2, 9, 0), utc(2027, 1, 2, 9, 15), utc(2027, 1, 2, 9, 30), utc(2027, 1, 2, 9, 45),
    ]
    # a repeat of a run that began before the instant asked about is still found
    assert next_after(t, utc(2027, 1, 2, 9, 20)) == utc(2027, 1, 2, 9, 30)


def test_repeats_stop_at_expiry() -> None:
    t = trigger(kind="once", start="2027-01-01T09:00", repeat_every="20m", repeat_for="2h",
                expires="2027-01-01T09:50")
    assert list(occurrences(t, utc(2027, 1, 1), utc(2027, 1, 2))) == [
        utc(2027, 1, 1, 9, 0), utc(2027, 1, 1, 9, 20), utc(2027, 1, 1, 9, 40),
    ]


def test_overlapping_repeat_windows_are_merged_in_order_without_duplicates() -> None:
    # every 6 hours, repeating every 4 hours for 10 hours: windows of consecutive times overlap
    t = trigger(kind="cron", start="2027-01-01T00:00", expression="0 */6 * * *", repeat_every="4h", repeat_for="10h")
    found = list(occurrences(t, utc(2026, 12, 31, 23), utc(2027, 1, 2, 0, 0)))
    expected = sorted(
        {
            base + timedelta(hours=4 * k)
            for base in (utc(2027, 1, 1, hour) for hour in (0, 6, 12, 18))
            for k in range(3)
            if base + timedelta(hours=4 * k) <= utc(2027, 1, 2)
        }
        | {utc(2027, 1, 2)}
    )
    assert found == expected
    assert utc(2027, 1, 1, 8) in found and utc(2027, 1, 1, 10) in found


# ---------------------------------------------------------------- iteration agrees with next_after


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "weekly", "start": "2027-01-04T09:00", "every_weeks": 2, "weekdays": ["mon", "thu"]},
        {"kind": "monthly", "start": "2027-01-01T23:59", "days": [31, "last", 1], "timezone": "Asia/Kolkata"},
        {"kind": "cron", "start": "2027-01-01T00:00", "expression": "7 */5 * * *", "timezone": "Europe/London"},
        {"kind": "daily", "start": "2027-01-01T01:30", "repeat_every": "25m", "repeat_for": "3h", "timezone": "America/New_York"},
    ],
)
def test_next_after_iterated_equals_occurrences(data: dict[str, Any]) -> None:
    t = trigger(**data)
    start, end = utc(2027, 1, 1), utc(2027, 4, 30)
    stepped: list[datetime] = []
    cursor = start
    while (due := next_after(t, cursor)) is not None and due <= end:
        stepped.append(due)
        cursor = due
    assert stepped == list(occurrences(t, start, end))
    assert stepped and all(a < b for a, b in itertools.pairwise(stepped))


def test_instants_in_other_zones_are_accepted_and_naive_ones_refused() -> None:
    t = trigger(kind="daily", start="2027-01-01T09:00")
    tokyo = datetime(2027, 1, 5, 18, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 09:00 UTC
    assert next_after(t, tokyo) == utc(2027, 1, 6, 9, 0)
    with pytest.raises(ValueError, match="aware"):
        next_after(t, datetime(2027, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        list(occurrences(t, utc(2027, 1, 1), datetime(2027, 1, 2)))


# ---------------------------------------------------------------- schedules


def test_next_for_schedule_takes_the_earliest_enabled_trigger() -> None:
    schedule = ScheduleDefinition.model_validate(
        {
            "name": "mixed",
            "triggers": [
                {"kind": "daily", "start": "2027-01-01T09:00"},
                {"kind": "daily", "start": "2027-01-01T08:00", "enabled": False},
                {"kind": "startup"},
                {"kind": "weekly", "start": "2027-01-01T07:00", "weekdays": ["wed"]},
                {"kind": "once", "start": "2027-01-01T09:00"},
            ],
        }
    )
    # Wednesday 2027-01-06: the weekly one at 07:00 is first
    assert next_for_schedule(schedule, utc(2027, 1, 6, 0)) == (utc(2027, 1, 6, 7), 3)
    # Thursday: the daily one; disabled trigger 1 never counts
    assert next_for_schedule(schedule, utc(2027, 1, 7, 0)) == (utc(2027, 1, 7, 9), 0)
    # a tie between triggers 0 and 4 goes to the lower index
    assert next_for_schedule(schedule, utc(2027, 1, 1, 0)) == (utc(2027, 1, 1, 9), 0)
    off = schedule.model_copy(update={"enabled": False})
    assert next_for_schedule(off, utc(2027, 1, 6)) is None


def test_next_for_schedule_none_when_nothing_is_left() -> None:
    schedule = ScheduleDefinition.model_validate(
        {"name": "done", "triggers": [{"kind": "once", "start": "2027-01-01T09:00"}, {"kind": "startup"}]}
    )
    assert next_for_schedule(schedule, utc(2027, 2, 1)) is None


# ---------------------------------------------------------------- descriptions


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (
            {"kind": "weekly", "start": "2027-01-04T09:00", "every_weeks": 2, "weekdays": ["mon", "thu"],
             "timezone": "Europe/London"},
            "weekly every 2 weeks on Mon, Thu at 09:00 Europe/London from 2027-01-04",
        ),
        ({"kind": "weekly", "start": "2027-01-04T09:00", "weekdays": ["sun"]},
         "weekly on Sun at 09:00 UTC from 2027-01-04"),
        ({"kind": "once", "start": "2027-06-01T09:30:15"}, "once at 2027-06-01 09:30:15 UTC"),
        ({"kind": "daily", "start": "2027-01-30T07:15", "every_days": 3},
         "daily every 3 days at 07:15 UTC from 2027-01-30"),
        (
            {"kind": "daily", "start": "2027-01-01T09:00", "repeat_every": "15m", "repeat_for": "1h",
             "expires": "2027-12-31T00:00", "stop_after": "2h", "enabled": False},
            "daily at 09:00 UTC from 2027-01-01, repeating every 15m for 1h, until 2027-12-31 00:00, "
            "stopping a run after 2h",
        ),
        ({"kind": "monthly", "start": "2027-01-01T09:00", "ordinal": {"week": "last", "weekday": "fri"}},
         "monthly on the last Fri at 09:00 UTC from 2027-01-01"),
        ({"kind": "monthly", "start": "2027-01-01T09:00", "days": [1, 15, "last"], "months": [7, 1]},
         "monthly on days 1, 15, last of Jan, Jul at 09:00 UTC from 2027-01-01"),
        ({"kind": "monthly", "start": "2027-01-01T09:00", "days": [31]},
         "monthly on day 31 at 09:00 UTC from 2027-01-01"),
        ({"kind": "startup"}, "at scheduler start-up"),
        ({"kind": "cron", "start": "2027-01-01T00:00", "expression": "*/15 9-17 * * 1-5", "timezone": "Europe/Paris"},
         "cron '*/15 9-17 * * 1-5' in Europe/Paris from 2027-01-01 00:00"),
    ],
)
def test_descriptions(data: dict[str, Any], text: str) -> None:
    assert describe(trigger(**data)) == text


# ---------------------------------------------------------------- speed


def test_a_day_of_a_minutely_cron_has_every_minute() -> None:
    t = trigger(kind="cron", start="2020-01-01T00:00", expression="* * * * *", timezone="America/New_York")
    start = utc(2027, 6, 1)
    found = list(occurrences(t, start, start + timedelta(days=1)))
    assert len(found) == 1440 and found[0] == start + timedelta(minutes=1)
    assert found == [start + timedelta(minutes=m) for m in range(1, 1441)]


@pytest.mark.timing
def test_a_day_of_a_minutely_cron_is_fast() -> None:
    t = trigger(kind="cron", start="2020-01-01T00:00", expression="* * * * *", timezone="America/New_York")
    start = utc(2027, 6, 1)
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        found = list(occurrences(t, start, start + timedelta(days=1)))
        best = min(best, time.perf_counter() - began)
    assert len(found) == 1440
    assert best < 0.05, f"a day of minutes took {best * 1000:.1f} ms"


OLD_STARTS = [
    ({"kind": "daily", "start": "1990-01-01T09:00"}, utc(2027, 5, 6, 9)),
    # every third Tuesday from 1990-01-02: 650 × 21 days later
    ({"kind": "weekly", "start": "1990-01-01T09:00", "weekdays": ["tue"], "every_weeks": 3}, utc(2027, 5, 18, 9)),
    ({"kind": "monthly", "start": "1990-01-01T09:00", "days": [15]}, utc(2027, 5, 15, 9)),
    ({"kind": "cron", "start": "1990-01-01T00:00", "expression": "* * * * *"}, utc(2027, 5, 5, 10, 1)),
]


@pytest.mark.parametrize(("data", "expected"), OLD_STARTS)
def test_next_after_an_old_start_is_the_next_occurrence(data: dict[str, Any], expected: datetime) -> None:
    assert next_after(trigger(**data), utc(2027, 5, 5, 10)) == expected


@pytest.mark.timing
def test_next_after_does_not_walk_from_an_old_start() -> None:
    kinds = [trigger(**data) for data, _ in OLD_STARTS]
    began = time.perf_counter()
    for t in kinds:
        for _ in range(50):
            assert next_after(t, utc(2027, 5, 5, 10)) is not None
    assert time.perf_counter() - began < 0.5
