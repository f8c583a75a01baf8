"""Pure formatting of what the CLI prints: times with their zone, schedule
times in the schedule's zone, tables whole in a pipe, tab-separated rows,
coloured states, one log line format."""

from __future__ import annotations

import io
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.table import Table

from idsync.cli import app as root
from idsync.cli.job import EXIT_FOR_STATE
from idsync.cli.output import PIPE_WIDTH, SafeConsole, state_text, tsv_line, when
from idsync.domain.results import RunState
from idsync.errors import ConfigError
from idsync.runtime.node import LineFormatter, log_line
from idsync.scheduling.describe import moment_in_zone
from idsync.services import schedules
from idsync.services.definitions import parse

REFERENCE = Path(__file__).parents[2] / "docs" / "reference.md"

WINTER = datetime(2027, 1, 5, 1, 0, tzinfo=UTC)
SUMMER = datetime(2027, 7, 5, 0, 0, tzinfo=UTC)


def test_a_berlin_trigger_at_two_shows_as_two_cet_not_one_utc() -> None:
    assert moment_in_zone(WINTER, "Europe/Berlin") == "2027-01-05 02:00 CET"


def test_the_zone_abbreviation_follows_daylight_saving() -> None:
    assert moment_in_zone(SUMMER, "Europe/Berlin") == "2027-07-05 02:00 CEST"


def test_seconds_are_shown_only_when_there_are_some() -> None:
    assert moment_in_zone(datetime(2027, 1, 5, 1, 0, 30, tzinfo=UTC), "UTC") == "2027-01-05 01:00:30 UTC"


def test_a_run_time_carries_its_zone_in_utc() -> None:
    assert when(WINTER, utc=True) == "2027-01-05 01:00:00 UTC"


def test_a_run_time_carries_the_local_zone_abbreviation() -> None:
    shown = when(WINTER)
    local = WINTER.astimezone()
    assert shown == f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"
    assert shown.split()[-1] and not shown.split()[-1][0].isdigit()


def test_no_time_is_an_empty_cell() -> None:
    assert when(None) == ""


def test_a_table_in_a_pipe_is_not_cut() -> None:
    out = io.StringIO()
    console = SafeConsole(file=out, force_terminal=False)
    long_value = "cn=" + "x" * 300 + ",ou=People,dc=example,dc=org"
    grid = Table()
    grid.add_column("dn")
    grid.add_column("state")
    grid.add_row(long_value, "succeeded")
    console.print(grid)
    assert long_value in out.getvalue()
    assert console.width == PIPE_WIDTH


def test_a_terminal_keeps_its_own_width() -> None:
    console = SafeConsole(file=io.StringIO(), force_terminal=True, width=90)
    assert console.width == 90


def test_tsv_rows_keep_every_value_on_one_line() -> None:
    assert tsv_line([1, "a\tb", "two\nlines", None, state_text("failed")]) == "1\ta b\ttwo lines\t\tfailed"


def test_states_are_coloured_and_plain_text_stays_the_state() -> None:
    assert state_text("failed").style == "red"
    assert state_text("succeeded").style == "green"
    assert state_text("terminated").plain == "terminated"


def test_log_lines_name_their_zone_and_level() -> None:
    assert log_line("run 3 started", "INFO", WINTER) == "2027-01-05 01:00:00 UTC info    run 3 started"


def test_logged_records_use_the_same_line_format() -> None:
    record = logging.LogRecord("idsync.runtime.scheduler", logging.WARNING, __file__, 1, "tick failed: %s", ("down",), None)
    record.created = WINTER.timestamp()
    assert LineFormatter().format(record) == "2027-01-05 01:00:00 UTC warning tick failed: down"


# ---------------------------------------------------------------- schedule times


def berlin_nightly() -> Any:
    return parse("schedule", {"name": "nightly", "triggers": [
        {"kind": "daily", "start": "2027-01-01T02:00", "timezone": "Europe/Berlin"},
    ]})


def test_due_times_are_named_in_the_trigger_zone() -> None:
    schedule = berlin_nightly()
    due = schedules.upcoming_due(schedule, datetime(2027, 1, 4, 12, 0, tzinfo=UTC), 2)
    assert [schedules.due_text(schedule, at, index) for at, index in due] == [
        "2027-01-05 02:00 CET", "2027-01-06 02:00 CET",
    ]


def test_an_instant_without_offset_is_read_in_the_schedule_zone() -> None:
    schedule = berlin_nightly()
    assert schedules.parse_instant("2027-01-05T02:00", schedule) == datetime(2027, 1, 5, 1, 0, tzinfo=UTC)
    assert schedules.parse_instant("2027-01-05T02:00+00:00", schedule) == datetime(2027, 1, 5, 2, 0, tzinfo=UTC)


def test_a_bad_instant_is_one_line_with_a_hint() -> None:
    import pytest

    with pytest.raises(ConfigError) as caught:
        schedules.parse_instant("tomorrow", berlin_nightly())
    assert caught.value.message == "'tomorrow' is not an instant" and "YYYY-MM-DD" in str(caught.value.hint)


# ---------------------------------------------------------------- exit codes


def test_a_terminated_run_has_its_own_documented_exit_code() -> None:
    assert EXIT_FOR_STATE[RunState.TERMINATED] == 9


@pytest.mark.parametrize("code", sorted(set(EXIT_FOR_STATE.values()) - {0}))
def test_every_exit_code_of_a_run_is_documented(code: int) -> None:
    assert re.search(rf"\b{code} a run", root.__doc__ or ""), f"exit code {code} is not in the idsync.cli.app docstring"
    assert re.search(rf"^\| {code} \| ", REFERENCE.read_text(encoding="utf-8"), re.M), f"exit code {code} not in docs"


def test_every_run_state_and_request_state_has_a_colour() -> None:
    from idsync.domain.results import RunState

    assert all(state_text(state).style for state in RunState)
    assert {state_text(s).style for s in ("pending", "approved", "executed", "denied", "expired", "cancelled")} == {
        "cyan", "green", "red", "dim",
    }
