"""Daylight saving time (SPEC S6.3) over the real transitions of four zones.

- America/New_York and Europe/London: one-hour shifts at different wall times;
- Australia/Lord_Howe: a 30-minute shift;
- Pacific/Apia: besides its DST, it skipped 30 December 2011 entirely
  (from UTC-10 to UTC+14).

The transitions are found by scanning the zone's UTC offsets, and the
expected instants are computed from them, not from the code under test.
Rules checked: a wall-clock time that does not exist runs once, shifted
forward by the gap; one that occurs twice runs once, at its first instance;
a daily trigger runs exactly once on every day that exists.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idsync.domain.schedules import CronTrigger, DailyTrigger
from idsync.scheduling.triggers import next_after, occurrences

ZONES = ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Apia")
FIRST_YEAR, LAST_YEAR = 2005, 2030
SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Transition:
    zone: str
    instant: datetime  # aware UTC: the first second of the new offset
    before: timedelta
    after: timedelta

    @property
    def shift(self) -> timedelta:
        """Positive: a gap (spring forward); negative: a fold (fall back)."""
        return self.after - self.before

    @property
    def wall(self) -> datetime:
        """The wall-clock time at which the old clock jumps."""
        return (self.instant + self.before).replace(tzinfo=None)

    def in_gap(self, wall: datetime) -> bool:
        return self.shift > timedelta(0) and self.wall <= wall < self.wall + self.shift

    def in_fold(self, wall: datetime) -> bool:
        return self.shift < timedelta(0) and self.wall + self.shift <= wall < self.wall


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


@functools.cache
def transitions(zone_name: str) -> tuple[Transition, ...]:
    """Every offset change of the zone from FIRST_YEAR to LAST_YEAR, to the second."""
    zone = ZoneInfo(zone_name)
    found = []
    day = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
    current = _offset(zone, day)
    while day.year <= LAST_YEAR:
        following = day + timedelta(days=1)
        if _offset(zone, following) != current:
            low, high = 0, 86400  # seconds after `day`: low has the old offset, high the new
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(zone, day + timedelta(seconds=middle)) == current:
                    low = middle
                else:
                    high = middle
            instant = day + timedelta(seconds=high)
            new = _offset(zone, instant)
            found.append(Transition(zone_name, instant, current, new))
            current = new
        day = following
    return tuple(found)


ALL_TRANSITIONS = tuple(t for zone in ZONES for t in transitions(zone))


@functools.cache
def transitions_by_day(zone_name: str) -> dict[date, tuple[Transition, ...]]:
    """The transitions whose gap or fold touches each wall-clock day (and the day after)."""
    days: dict[date, list[Transition]] = {}
    for transition in transitions(zone_name):
        low = min(transition.wall, transition.wall + transition.shift).date()
        for offset in range(-1, 3):
            days.setdefault(low + timedelta(days=offset), []).append(transition)
    return {day: tuple(found) for day, found in days.items()}


def nearby(zone_name: str, wall: datetime) -> tuple[Transition, ...]:
    return transitions_by_day(zone_name).get(wall.date(), ())


def expected_instant(zone_name: str, wall: datetime) -> datetime:
    """When a wall-clock time should run, by the rules of S6.3."""
    for transition in nearby(zone_name, wall):
        if transition.in_gap(wall):
            return transition.instant + (wall - transition.wall)
        if transition.in_fold(wall):
            return (wall - transition.before).replace(tzinfo=UTC)
    offset = wall.replace(tzinfo=ZoneInfo(zone_name)).utcoffset()
    assert offset is not None
    return (wall - offset).replace(tzinfo=UTC)


def day_exists(zone_name: str, day: date) -> bool:
    """False for a calendar day skipped whole (Apia, 30 December 2011)."""
    midnight = datetime.combine(day, time())
    return not any(
        t.in_gap(midnight) and t.wall + t.shift >= midnight + timedelta(days=1) for t in nearby(zone_name, midnight)
    )


def wall_of(instant: datetime, zone_name: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone_name)).replace(tzinfo=None)


def stepped(trigger: DailyTrigger | CronTrigger, start: datetime, end: datetime) -> list[datetime]:
    found = []
    cursor = start
    while (due := next_after(trigger, cursor)) is not None and due <= end:
        found.append(due)
        cursor = due
    return found


def check_daily(zone_name: str, at: time, first: date, last: date) -> list[datetime]:
    """A daily trigger at *at* from *first*: exactly one run on each existing
    day up to *last*, at the instant the rules give; returns the runs."""
    trigger = DailyTrigger(kind="daily", start=datetime.combine(first, at), timezone=zone_name)
    begin = datetime.combine(first, time(), tzinfo=UTC) - timedelta(days=2)
    end = datetime.combine(last, time(), tzinfo=UTC) + timedelta(days=2)
    found = list(occurrences(trigger, begin, end))

    assert all(a < b for a, b in itertools.pairwise(found)), "not strictly increasing"
    assert all(o.tzinfo is UTC for o in found)
    per_day = Counter(wall_of(o, zone_name).date() for o in found)
    assert max(per_day.values()) == 1, f"a day runs twice: {per_day.most_common(1)}"
    day = first
    while day <= last:
        if day_exists(zone_name, day):
            assert per_day[day] == 1, f"{day} has no run at {at} in {zone_name}"
        else:
            assert per_day[day] == 0
        day += timedelta(days=1)
    for run in found:
        day = wall_of(run, zone_name).date()
        if first <= day <= last:
            wall = datetime.combine(day, at)
            assert run == expected_instant(zone_name, wall), f"{wall} in {zone_name} ran at {run}"
    assert stepped(trigger, begin, end) == found
    return found


# ---------------------------------------------------------------- the scan itself


def test_the_scan_finds_the_known_transitions() -> None:
    new_york = {t.instant for t in transitions("America/New_York") if t.instant.year == 2027}
    assert new_york == {datetime(2027, 3, 14, 7, tzinfo=UTC), datetime(2027, 11, 7, 6, tzinfo=UTC)}
    london = {t.instant for t in transitions("Europe/London") if t.instant.year == 2027}
    assert london == {datetime(2027, 3, 28, 1, tzinfo=UTC), datetime(2027, 10, 31, 1, tzinfo=UTC)}
    lord_howe = {abs(t.shift) for t in transitions("Australia/Lord_Howe")}
    assert lord_howe == {timedelta(minutes=30)}
    apia = [t for t in transitions("Pacific/Apia") if t.shift == timedelta(hours=24)]
    assert [t.instant for t in apia] == [datetime(2011, 12, 30, 10, tzinfo=UTC)]
    assert not day_exists("Pacific/Apia", date(2011, 12, 30))
    assert day_exists("Pacific/Apia", date(2011, 12, 31))


# ---------------------------------------------------------------- explicit 2027 examples


@pytest.mark.parametrize(
    ("zone", "wall", "expected"),
    [
        # US spring forward, 2027-03-14: 02:00 EST becomes 03:00 EDT
        ("America/New_York", "2027-03-14T02:30", datetime(2027, 3, 14, 7, 30, tzinfo=UTC)),  # 03:30 EDT
        ("America/New_York", "2027-03-14T02:00", datetime(2027, 3, 14, 7, 0, tzinfo=UTC)),  # 03:00 EDT
        ("America/New_York", "2027-03-14T01:59", datetime(2027, 3, 14, 6, 59, tzinfo=UTC)),
        ("America/New_York", "2027-03-14T03:00", datetime(2027, 3, 14, 7, 0, tzinfo=UTC)),
        # US fall back, 2027-11-07: 01:00-01:59 happen twice; the first (EDT) counts
        ("America/New_York", "2027-11-07T01:30", datetime(2027, 11, 7, 5, 30, tzinfo=UTC)),
        ("America/New_York", "2027-11-07T02:00", datetime(2027, 11, 7, 7, 0, tzinfo=UTC)),
        # EU spring forward, 2027-03-28: London 01:00 GMT becomes 02:00 BST
        ("Europe/London", "2027-03-28T01:30", datetime(2027, 3, 28, 1, 30, tzinfo=UTC)),  # 02:30 BST
        ("Europe/Paris", "2027-03-28T02:30", datetime(2027, 3, 28, 1, 30, tzinfo=UTC)),  # 03:30 CEST
        # EU fall back, 2027-10-31: the first instance is still summer time
        ("Europe/London", "2027-10-31T01:30", datetime(2027, 10, 31, 0, 30, tzinfo=UTC)),  # 01:30 BST
        ("Europe/Paris", "2027-10-31T02:30", datetime(2027, 10, 31, 0, 30, tzinfo=UTC)),  # 02:30 CEST
        # Lord Howe, 2027-10-03: 02:00 +10:30 becomes 02:30 +11, a 30-minute gap
        ("Australia/Lord_Howe", "2027-10-03T02:15", datetime(2027, 10, 2, 15, 45, tzinfo=UTC)),  # 02:45 +11
        # Lord Howe, 2027-04-04: 02:00 +11 becomes 01:30 +10:30
        ("Australia/Lord_Howe", "2027-04-04T01:45", datetime(2027, 4, 3, 14, 45, tzinfo=UTC)),  # first, +11
    ],
)
def test_daily_runs_on_2027_transition_days(zone: str, wall: str, expected: datetime) -> None:
    at = datetime.fromisoformat(wall)
    trigger = DailyTrigger(kind="daily", start=at - timedelta(days=2), timezone=zone)
    day_before = at - timedelta(days=1)
    runs = list(occurrences(trigger, expected - timedelta(hours=30), expected + timedelta(hours=20)))
    assert expected in runs
    # one run on the transition day and one on the day before: never two on that day
    assert len(runs) == 2
    assert runs[0] == expected_instant(zone, day_before)
    assert next_after(trigger, expected - SECOND) == expected


def test_new_york_fall_back_runs_once_not_twice() -> None:
    trigger = DailyTrigger(kind="daily", start=datetime(2027, 11, 1, 1, 30), timezone="America/New_York")
    day = list(occurrences(trigger, datetime(2027, 11, 7, 4, tzinfo=UTC), datetime(2027, 11, 7, 12, tzinfo=UTC)))
    assert day == [datetime(2027, 11, 7, 5, 30, tzinfo=UTC)]
    # asked from between the two instances of 01:30, the next run is the next day's
    assert next_after(trigger, datetime(2027, 11, 7, 6, 0, tzinfo=UTC)) == datetime(2027, 11, 8, 6, 30, tzinfo=UTC)


def test_asked_from_inside_the_gap_shifted_run_is_still_due() -> None:
    trigger = DailyTrigger(kind="daily", start=datetime(2027, 3, 1, 2, 30), timezone="America/New_York")
    # 07:10 UTC is 03:10 EDT, after the gap, before 02:30 shifted to 03:30 EDT
    assert next_after(trigger, datetime(2027, 3, 14, 7, 10, tzinfo=UTC)) == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)


def test_apia_has_no_run_on_the_day_it_skipped_and_no_double_run_after() -> None:
    runs = check_daily("Pacific/Apia", time(9, 0), date(2011, 12, 27), date(2012, 1, 2))
    days = [wall_of(r, "Pacific/Apia").date() for r in runs][:5]
    assert days == [date(2011, 12, 27), date(2011, 12, 28), date(2011, 12, 29), date(2011, 12, 31), date(2012, 1, 1)]
    # 29 December 09:00 (UTC-10) and 31 December 09:00 (UTC+14) are 24 hours apart
    assert runs[3] - runs[2] == timedelta(hours=24)
    assert runs[3] == datetime(2011, 12, 30, 19, 0, tzinfo=UTC)


def test_cron_at_a_nonexistent_time_is_shifted_by_the_gap() -> None:
    trigger = CronTrigger(kind="cron", start=datetime(2027, 1, 1), expression="30 2 * * *", timezone="America/New_York")
    runs = list(occurrences(trigger, datetime(2027, 3, 13, tzinfo=UTC), datetime(2027, 3, 16, tzinfo=UTC)))
    assert runs == [
        datetime(2027, 3, 13, 7, 30, tzinfo=UTC),
        datetime(2027, 3, 14, 7, 30, tzinfo=UTC),  # 03:30 EDT
        datetime(2027, 3, 15, 6, 30, tzinfo=UTC),
    ]


def test_cron_in_the_repeated_hour_runs_at_the_first_instance_only() -> None:
    trigger = CronTrigger(kind="cron", start=datetime(2027, 1, 1), expression="*/30 1 * * *", timezone="America/New_York")
    runs = list(occurrences(trigger, datetime(2027, 11, 7, tzinfo=UTC), datetime(2027, 11, 8, tzinfo=UTC)))
    assert runs == [datetime(2027, 11, 7, 5, 0, tzinfo=UTC), datetime(2027, 11, 7, 5, 30, tzinfo=UTC)]


def test_every_minute_across_spring_forward_has_no_duplicates() -> None:
    trigger = CronTrigger(kind="cron", start=datetime(2027, 1, 1), expression="* * * * *", timezone="America/New_York")
    start, end = datetime(2027, 3, 14, 6, tzinfo=UTC), datetime(2027, 3, 14, 9, tzinfo=UTC)
    runs = list(occurrences(trigger, start, end))
    # wall times 02:00-02:59 do not exist; shifted, they fall on 03:00-03:59, which run once
    assert runs == [start + timedelta(minutes=m) for m in range(1, 181)]


# ---------------------------------------------------------------- every transition, deterministically


@pytest.mark.parametrize("zone", ZONES)
def test_every_transition_of_every_zone_at_times_around_it(zone: str) -> None:
    checked = 0
    for transition in transitions(zone):
        size = abs(transition.shift)
        edge = transition.wall if transition.shift > timedelta(0) else transition.wall + transition.shift
        for delta in (-timedelta(minutes=1), timedelta(0), size / 2, size - timedelta(minutes=1), size):
            wall = edge + delta
            day = wall.date()
            check_daily(zone, wall.time(), day - timedelta(days=2), day + timedelta(days=2))
            checked += 1
    # two a year (Apia: from 2010 to 2021, when it ended DST, plus the skipped day)
    assert checked == 5 * len(transitions(zone)) >= 5 * 12


# ---------------------------------------------------------------- properties


def near(transition: Transition) -> st.SearchStrategy[time]:
    """Wall-clock times within a few hours of the transition, to the second."""
    return st.integers(min_value=-3 * 3600, max_value=3 * 3600).map(
        lambda seconds: (transition.wall + timedelta(seconds=seconds)).time()
    )


ANY_TIME = st.times().map(lambda t: t.replace(microsecond=0))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_daily_trigger_runs_once_on_every_day_around_any_transition(data: st.DataObject) -> None:
    transition = data.draw(st.sampled_from(ALL_TRANSITIONS), label="transition")
    at = data.draw(st.one_of(near(transition), ANY_TIME), label="at")
    day = transition.wall.date()
    first = day - timedelta(days=data.draw(st.integers(0, 3), label="days before"))
    last = day + timedelta(days=data.draw(st.integers(0, 3), label="days after"))
    check_daily(transition.zone, at, first, last)


@settings(max_examples=5, deadline=None)  # four years of days each
@given(zone=st.sampled_from(ZONES), at=ANY_TIME, year=st.integers(2008, 2027))
def test_daily_trigger_over_several_years_misses_and_doubles_no_day(zone: str, at: time, year: int) -> None:
    first, last = date(year, 1, 1), date(year + 3, 12, 31)
    runs = check_daily(zone, at, first, last)
    skipped = 1 if zone == "Pacific/Apia" and year <= 2011 else 0
    in_range = [r for r in runs if first <= wall_of(r, zone).date() <= last]
    assert len(in_range) == (last - first).days + 1 - skipped


@settings(max_examples=15, deadline=None)  # two days of minutes each
@given(
    transition=st.sampled_from(ALL_TRANSITIONS),
    step=st.sampled_from([5, 10, 15, 20, 30]),
)
def test_cron_every_few_minutes_across_any_transition(transition: Transition, step: int) -> None:
    zone = transition.zone
    first = datetime.combine(transition.wall.date() - timedelta(days=1), time())
    last = first + timedelta(days=2)
    trigger = CronTrigger(kind="cron", start=first, expression=f"*/{step} * * * *", timezone=zone)
    begin = expected_instant(zone, first) - SECOND
    end = expected_instant(zone, last) - SECOND
    walls = (first + timedelta(minutes=m) for m in range(0, 2 * 24 * 60, step))
    expected = sorted({i for i in (expected_instant(zone, w) for w in walls) if begin < i <= end})
    runs = list(occurrences(trigger, begin, end))
    assert runs == expected
    assert stepped(trigger, begin, end) == runs
