"""Schedule and trigger definitions: parsing, validation messages, round trips."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from idsync.domain.schedules import (
    CronTrigger,
    MonthlyTrigger,
    OnceTrigger,
    OrdinalDay,
    ScheduleDefinition,
    StartupTrigger,
    Trigger,
    WeeklyTrigger,
    format_duration,
    parse_duration,
)
from idsync.errors import ConfigError
from idsync.services.definitions import format_validation_error, parse

TRIGGER: TypeAdapter[Any] = TypeAdapter(Trigger)


def trigger(**data: Any) -> Any:
    return TRIGGER.validate_python(data)


def problem(data: dict[str, Any]) -> str:
    """The one-line message a user sees for a schedule with this trigger."""
    with pytest.raises(ConfigError) as caught:
        parse("schedule", {"name": "nightly", "triggers": [data]})
    message = caught.value.message
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("PT1H30M", 5400),
        ("P1DT2H", 93600),
        ("pt45s", 45),
        ("120", 120),
        (3600, 3600),
        (7.0, 7),
        (timedelta(minutes=5), 300),
    ],
)
def test_durations_are_read_in_every_documented_form(text: Any, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0s", "longer than zero"),
        (0, "longer than zero"),
        (-5, "longer than zero"),
        ("soon", "not a duration"),
        ("1x", "not a duration"),
        ("", "not a duration"),
        ("P1M", "no fixed length"),
        ("P1Y", "no fixed length"),
        ("PT", "not a duration"),
        (1.5, "whole number of seconds"),
        (True, "not a duration"),
        ([1], "not a duration"),
    ],
)
def test_bad_durations_are_refused_with_a_hint(value: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90, "1m30s"), (5400, "1h30m"), (172800, "2d"), (93784, "1d2h3m4s"), (45, "45s")],
)
def test_durations_are_written_in_the_short_form(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
    assert parse_duration(text) == timedelta(seconds=seconds)


# ---------------------------------------------------------------- triggers: accepted forms


def test_each_kind_is_read_from_its_yaml_form() -> None:
    assert isinstance(trigger(kind="once", start="2027-01-04T09:00"), OnceTrigger)
    assert trigger(kind="daily", start="2027-01-04T09:00", every_days=3).every_days == 3
    weekly = trigger(kind="weekly", start="2027-01-04 09:00", weekdays=["mon", "thu"], every_weeks=2)
    assert isinstance(weekly, WeeklyTrigger) and weekly.weekdays == ["mon", "thu"]
    monthly = trigger(kind="monthly", start="2027-01-01T09:00", days=[1, 15, "last"], months=[1, 7])
    assert isinstance(monthly, MonthlyTrigger) and monthly.days == [1, 15, "last"]
    ordinal = trigger(kind="monthly", start="2027-01-01T09:00", ordinal={"week": "last", "weekday": "fri"})
    assert ordinal.ordinal == OrdinalDay(week="last", weekday="fri") and ordinal.months == list(range(1, 13))
    assert isinstance(trigger(kind="startup"), StartupTrigger)
    cron = trigger(kind="cron", start="2027-01-01T00:00", expression="  */15  9-17 * * 1-5 ")
    assert isinstance(cron, CronTrigger) and cron.expression == "*/15 9-17 * * 1-5"


def test_start_is_a_naive_wall_clock_time_and_aware_input_is_converted_to_the_zone() -> None:
    plain = trigger(kind="once", start="2027-01-04T09:00", timezone="Europe/London")
    assert plain.start == datetime(2027, 1, 4, 9, 0) and plain.start.tzinfo is None
    # 14:00 UTC is 09:00 in New York in January (EST, UTC-5)
    aware = trigger(kind="once", start="2027-01-04T14:00:00Z", timezone="America/New_York")
    assert aware.start == datetime(2027, 1, 4, 9, 0)
    offset = trigger(kind="once", start="2027-07-04T09:00+02:00", timezone="Europe/London")
    assert offset.start == datetime(2027, 7, 4, 8, 0)
    dated = trigger(kind="daily", start="2027-01-04")
    assert dated.start == datetime(2027, 1, 4, 0, 0)
    assert trigger(kind="once", start="2027-01-04T09:00:00.750").start == datetime(2027, 1, 4, 9, 0)


def test_defaults_of_the_common_fields() -> None:
    daily = trigger(kind="daily", start="2027-01-04T09:00")
    assert (daily.enabled, daily.timezone, daily.expires) == (True, "UTC", None)
    assert (daily.repeat_every, daily.repeat_for, daily.stop_after) == (None, None, None)
    assert trigger(kind="startup").start is None


def test_repeat_and_stop_durations_are_kept_as_spans() -> None:
    daily = trigger(
        kind="daily", start="2027-01-04T09:00", repeat_every="15m", repeat_for="PT1H", stop_after=5400
    )
    assert daily.repeat_every == timedelta(minutes=15)
    assert daily.repeat_for == timedelta(hours=1)
    assert daily.stop_after == timedelta(minutes=90)


# ---------------------------------------------------------------- triggers: refused, one line each


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"kind": "daily", "start": "2027-01-04T09:00", "timezone": "Mars/Base"},
            "triggers.0.daily.timezone: unknown time zone 'Mars/Base'",
        ),
        (
            {"kind": "once", "start": "2027-02-30T09:00"},
            "triggers.0.once.start: '2027-02-30T09:00' is not a valid date and time "
            "(30 February 2027 does not exist: February has 28 days)",
        ),
        (
            {"kind": "once", "start": "2027-13-01T09:00"},
            "triggers.0.once.start: '2027-13-01T09:00' is not a valid date and time (there is no month 13)",
        ),
        (
            {"kind": "once", "start": "next monday"},
            "triggers.0.once.start: 'next monday' is not a valid date and time; write YYYY-MM-DDTHH:MM",
        ),
        (
            {"kind": "daily", "start": "2027-01-04T09:00", "expires": "2027-01-04T08:00"},
            "triggers.0.daily.expires: expires (2027-01-04 08:00) must be after start (2027-01-04 09:00)",
        ),
        (
            {"kind": "weekly", "start": "2027-01-04T09:00", "weekdays": []},
            "triggers.0.weekly.weekdays: a weekly trigger needs at least one weekday",
        ),
        (
            {"kind": "weekly", "start": "2027-01-04T09:00", "weekdays": ["mon", "mon"]},
            "triggers.0.weekly.weekdays: a weekday is listed twice",
        ),
        (
            {"kind": "weekly", "start": "2027-01-04T09:00", "weekdays": ["monday"]},
            "triggers.0.weekly.weekdays.0:",
        ),
        (
            {"kind": "monthly", "start": "2027-01-01T09:00"},
            "triggers.0.monthly: a monthly trigger needs exactly one of days (e.g. [1, 15, last]) or ordinal",
        ),
        (
            {"kind": "monthly", "start": "2027-01-01T09:00", "days": [1], "ordinal": {"week": "first", "weekday": "mon"}},
            "(has both)",
        ),
        (
            {"kind": "monthly", "start": "2027-01-01T09:00", "days": [30, 31], "months": [2]},
            "triggers.0.monthly.days: day 30 never occurs in February",
        ),
        (
            {"kind": "monthly", "start": "2027-01-01T09:00", "days": [31], "months": [4, 6, 9, 11]},
            "day 31 never occurs in April, June, September, November",
        ),
        (
            {"kind": "monthly", "start": "2027-01-01T09:00", "days": [32]},
            "triggers.0.monthly.days: day 32 does not exist",
        ),
        (
            {"kind": "monthly", "start": "2027-01-01T09:00", "days": [1], "months": [0]},
            "triggers.0.monthly.months: month 0 does not exist",
        ),
        (
            {"kind": "monthly", "start": "2027-01-01T09:00", "days": []},
            "triggers.0.monthly.days: days is empty",
        ),
        (
            {"kind": "daily", "start": "2027-01-04T09:00", "repeat_every": "15m"},
            "triggers.0.daily: repeat_every and repeat_for go together",
        ),
        (
            {"kind": "daily", "start": "2027-01-04T09:00", "repeat_for": "1h"},
            "repeat_every and repeat_for go together",
        ),
        (
            {"kind": "daily", "start": "2027-01-04T09:00", "repeat_every": "1h", "repeat_for": "1h"},
            "repeat_every (1h) must be shorter than repeat_for (1h)",
        ),
        (
            {"kind": "daily", "start": "2027-01-04T09:00", "repeat_every": "2h", "repeat_for": "30m"},
            "repeat_every (2h) must be shorter than repeat_for (30m)",
        ),
        (
            {"kind": "cron", "start": "2027-01-01T00:00", "expression": "61 * * * *"},
            "triggers.0.cron.expression: cron expression '61 * * * *' is not valid: Bad minute",
        ),
        (
            {"kind": "cron", "start": "2027-01-01T00:00", "expression": "0 0 30 2 *"},
            "cron expression '0 0 30 2 *' is not valid: Bad day-of-month",
        ),
        (
            {"kind": "cron", "start": "2027-01-01T00:00", "expression": "0 9 * *"},
            "cron expression '0 9 * *' has 4 fields; it needs 5",
        ),
        (
            {"kind": "daily", "start": "2027-01-04T09:00", "every_days": 0},
            "triggers.0.daily.every_days:",
        ),
        (
            {"kind": "daily"},
            "triggers.0.daily.start: Field required",
        ),
        (
            {"kind": "daily", "start": "2027-01-04T09:00", "stop_after": "P1M"},
            "triggers.0.daily.stop_after: 'P1M': years and months have no fixed length",
        ),
        (
            {"kind": "daily", "start": "2027-01-04T09:00", "at": "09:00"},
            "triggers.0.daily.at: Extra inputs are not permitted",
        ),
        (
            {"kind": "hourly", "start": "2027-01-04T09:00"},
            "does not match any of the expected tags: 'once', 'daily', 'weekly', 'monthly', 'startup', 'cron'",
        ),
    ],
)
def test_invalid_triggers_are_refused_with_one_line_naming_the_field(data: dict[str, Any], expected: str) -> None:
    message = problem(data)
    assert message.startswith("schedule 'nightly': ")
    assert expected in message


# ---------------------------------------------------------------- repeats: how often a trigger may run


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"kind": "daily", "start": "2027-01-04T09:00", "repeat_every": "1s", "repeat_for": "100000d"},
            "schedule 'nightly': triggers.0.daily.repeat_every: repeat_every 1s is too short: a trigger repeats "
            "at most once a minute (repeat_every: 1m or more); triggers.0.daily.repeat_for: repeat_for 100000d is "
            "too long: repeats last at most a day (repeat_for: 1d); to run on more days, use a daily, weekly or "
            "cron trigger",
        ),
        (
            {"kind": "once", "start": "2027-01-04T09:00", "repeat_every": "59s", "repeat_for": "1h"},
            "triggers.0.once.repeat_every: repeat_every 59s is too short",
        ),
        (
            {"kind": "startup", "repeat_every": "5m", "repeat_for": "1d1s"},
            "triggers.0.startup.repeat_for: repeat_for 1d1s is too long",
        ),
        (
            {"kind": "cron", "start": "2027-01-01T00:00", "expression": "*/5 * * * *", "repeat_every": "1m",
             "repeat_for": "1h"},
            "triggers.0.cron: cron expression '*/5 * * * *' repeated every 1m for 1h runs up to 17,280 times a "
            "day; a trigger runs at most 1,440 times a day (once a minute)",
        ),
    ],
)
def test_repeats_more_often_than_once_a_minute_are_refused_naming_the_field(data: dict[str, Any], expected: str) -> None:
    assert expected in problem(data)


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "daily", "start": "2027-01-04T00:00", "repeat_every": "1m", "repeat_for": "1d"},
        {"kind": "startup", "repeat_every": "1m", "repeat_for": "1d"},
        {"kind": "cron", "start": "2027-01-01T00:00", "expression": "* * * * *"},
        {"kind": "cron", "start": "2027-01-01T00:00", "expression": "*/15 * * * *", "repeat_every": "1m",
         "repeat_for": "15m"},
        {"kind": "cron", "start": "2027-01-01T00:00", "expression": "0 9-17 * * 1-5", "repeat_every": "90s",
         "repeat_for": "1h"},
    ],
)
def test_repeats_up_to_once_a_minute_are_accepted(data: dict[str, Any]) -> None:
    parse("schedule", {"name": "busy", "triggers": [data]})


def test_the_runs_a_cron_trigger_makes_in_a_day() -> None:
    assert trigger(kind="cron", start="2027-01-01T00:00", expression="*/15 9-17 * * 1-5").runs_per_day == 36
    repeated = trigger(kind="cron", start="2027-01-01T00:00", expression="0 9-17 * * 1-5", repeat_every="90s",
                       repeat_for="1h")
    assert (repeated.repeats, repeated.runs_per_day) == (40, 360)


def test_a_schedule_needs_a_trigger_and_a_valid_name() -> None:
    with pytest.raises(ConfigError, match="triggers: a schedule needs at least one trigger"):
        parse("schedule", {"name": "empty", "triggers": []})
    with pytest.raises(ConfigError, match="name: String should match pattern"):
        parse("schedule", {"name": "bad/name", "triggers": [{"kind": "startup"}]})
    with pytest.raises(ConfigError, match="misfire"):
        parse("schedule", {"name": "x", "misfire": "later", "triggers": [{"kind": "startup"}]})


def test_day_29_of_february_is_allowed_because_leap_years_have_it() -> None:
    monthly = trigger(kind="monthly", start="2027-01-01T09:00", days=[29, "last"], months=[2])
    assert monthly.days == [29, "last"]


def test_a_day_missing_from_some_chosen_months_is_allowed() -> None:
    monthly = trigger(kind="monthly", start="2027-01-01T09:00", days=[31], months=[1, 2, 4])
    assert monthly.days == [31]


# ---------------------------------------------------------------- schedules


def test_schedule_defaults_and_round_trip_through_json() -> None:
    schedule = ScheduleDefinition.model_validate(
        {
            "name": "office hours",
            "triggers": [
                {"kind": "cron", "start": "2027-01-01T00:00", "expression": "*/15 9-17 * * 1-5",
                 "timezone": "Europe/Paris", "stop_after": "45m"},
                {"kind": "daily", "start": "2027-01-04T22:00", "repeat_every": 900, "repeat_for": "PT1H30M"},
                {"kind": "startup"},
            ],
        }
    )
    assert schedule.enabled and schedule.misfire == "run_once" and schedule.grace == timedelta(hours=1)
    assert schedule.SECRET_FIELDS == ()
    body = schedule.model_dump(mode="json", exclude_defaults=True)
    assert body["triggers"][1] == {
        "kind": "daily",
        "start": "2027-01-04T22:00:00",
        "repeat_every": "15m",
        "repeat_for": "1h30m",
    }
    assert body["triggers"][0]["stop_after"] == "45m"
    assert ScheduleDefinition.model_validate(body) == schedule
    assert ScheduleDefinition.model_validate_json(schedule.model_dump_json()) == schedule


def test_grace_is_exported_in_the_short_form() -> None:
    schedule = ScheduleDefinition(name="s", triggers=[StartupTrigger(kind="startup")], grace="PT2H30M")  # type: ignore[arg-type]
    assert schedule.grace == timedelta(hours=2, minutes=30)
    assert schedule.model_dump(mode="json")["grace"] == "2h30m"


def test_triggers_are_frozen() -> None:
    daily = trigger(kind="daily", start="2027-01-04T09:00")
    with pytest.raises(ValidationError):
        daily.every_days = 2


def test_the_message_formatter_keeps_one_line() -> None:
    with pytest.raises(ValidationError) as caught:
        TRIGGER.validate_python({"kind": "once", "start": "2027-02-30T09:00", "timezone": "Nowhere/Land"})
    line = format_validation_error(caught.value, "trigger")
    assert "unknown time zone 'Nowhere/Land'" in line and "\n" not in line
