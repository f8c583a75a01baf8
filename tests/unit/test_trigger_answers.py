"""A trigger from typed answers: the same text accepted and refused by every front end."""

from __future__ import annotations

import pytest

from idsync.errors import ConfigError
from idsync.services.schedule_edits import new_schedule
from idsync.services.trigger_answers import TriggerAnswers, trigger_data


def test_a_weekly_trigger_reads_weekdays_time_and_first_day_in_its_zone() -> None:
    data = trigger_data(TriggerAnswers(kind="weekly", weekly="Monday, thu", at="02:30", start="2027-01-04",
                                       tz="Europe/Berlin", every=2))
    assert data == {"kind": "weekly", "timezone": "Europe/Berlin", "start": "2027-01-04T02:30:00",
                    "every_weeks": 2, "weekdays": ["mon", "thu"]}
    schedule = new_schedule("nightly", data)
    assert schedule.triggers[0].kind == "weekly"


def test_monthly_takes_days_or_an_ordinal_weekday_and_months() -> None:
    days = trigger_data(TriggerAnswers(kind="monthly", monthly_day="1,15,last", months="1,7", start="2027-01-01"))
    assert days["days"] == [1, 15, "last"] and days["months"] == [1, 7]
    ordinal = trigger_data(TriggerAnswers(kind="monthly", monthly_ordinal="last:friday", start="2027-01-01"))
    assert ordinal["ordinal"] == {"week": "last", "weekday": "fri"}


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (TriggerAnswers(kind="weekly", weekly="fry"), "weekdays: 'fry' is not a weekday"),
        (TriggerAnswers(kind="weekly", weekly=" , "), "give at least one weekday"),
        (TriggerAnswers(kind="daily", at="25:00"), "time of day '25:00' is not a time of day"),
        (TriggerAnswers(kind="daily", tz="Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (TriggerAnswers(kind="monthly"), "a monthly trigger needs days of the month or ordinal weekday"),
        (TriggerAnswers(kind="monthly", monthly_day="1", monthly_ordinal="last:fri"), "not both"),
        (TriggerAnswers(kind="monthly", monthly_day="first"), "'first' is not a day of the month"),
        (TriggerAnswers(kind="daily", months="1"), "months goes with a monthly trigger"),
        (TriggerAnswers(kind="cron", every=2), "every goes with a daily (days) or weekly (weeks) trigger"),
        (TriggerAnswers(kind="once"), "a one-time trigger needs its date and time"),
        (TriggerAnswers(kind="once", once="2027-01-01T09:00+01:00"), "give a local time without offset"),
        (TriggerAnswers(kind="cron"), "a cron trigger needs its expression"),
        (TriggerAnswers(kind="hourly"), "unknown kind of trigger 'hourly'"),
    ],
)
def test_bad_answers_are_refused_with_one_line_naming_the_field(answers: TriggerAnswers, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        trigger_data(answers)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_front_end_names_fields_its_own_way() -> None:
    with pytest.raises(ConfigError, match="--weekly: 'fry' is not a weekday"):
        trigger_data(TriggerAnswers(kind="weekly", weekly="fry"), {"weekly": "--weekly"})
