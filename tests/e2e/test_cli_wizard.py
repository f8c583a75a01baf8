"""The wizards of ``collection create``, ``collection edit`` and ``schedule
create``, driven through a pseudo-terminal as a user answers them: each
wrong answer is refused at once and asked again, the answers before it kept;
the wizard ends with the review of changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.test_cli import Cli
from tests.e2e.test_cli_collections import InProcess, cli, home, in_terminal, run  # noqa: F401 - the fixtures these tests use


def test_collection_create_asks_and_re_asks_each_wrong_answer(cli: Cli, run: InProcess) -> None:  # noqa: F811
    run("schedule", "create", "night", "--daily", "--at", "02:00", "--yes")
    answers = [
        "",  # description
        "ou, peeple", "1, 2",  # jobs: a typo, then by number
        "", "maybe", "continue",  # on failure of ou, then of people
        "nigth", "1",  # schedule
        "y",  # notifications
        "ops-at-example.org", "ops@example.org, hr@example.org",  # recipients
        "9", "errors, 4",  # triggers
        "n",  # preview
        "y",  # save
    ]
    code, output = in_terminal(cli, ["collection", "create", "nightly"], answers)
    assert code == 0, output
    assert "  1. ou\n  2. people" in output and "  1. night" in output
    assert "not taken: there is no sync job 'peeple' (there are: ou, people); answer again" in output
    assert "not taken: 'maybe': answer abort or continue; answer again" in output
    assert "not taken: there is no schedule 'nigth'" in output
    assert "not taken: 'ops-at-example.org' is not an e-mail address" in output
    assert "not taken: 9 is not in the list (1 to 7)" in output
    assert "job collection 'nightly' (new)" in output and "job collection 'nightly' created" in output
    shown = run.json("collection", "show", "nightly")["definition"]
    assert shown["jobs"] == [{"job": "ou"}, {"job": "people", "on_failure": "continue"}]
    assert shown["schedule"] == "night"
    assert shown["notifications"] == {
        "enabled": True, "recipients": ["ops@example.org", "hr@example.org"], "triggers": ["errors", "failed"],
    }


def test_collection_edit_without_options_asks_with_the_stored_values_as_defaults(cli: Cli, run: InProcess) -> None:  # noqa: F811
    run("schedule", "create", "night", "--daily", "--at", "02:00", "--yes")
    run("collection", "create", "nightly", "--job", "ou", "--job", "people:continue", "--schedule", "night",
        "--notify-to", "ops@example.org", "--notify-on", "failed", "--yes")
    answers = [
        "nightly sync",  # description
        "3", "people",  # jobs: out of the list, then one of them
        "",  # on failure of people: stays continue
        "nope", "-",  # schedule: none
        "n",  # notifications off
        "",  # preview: stays no
        "y",  # save
    ]
    code, output = in_terminal(cli, ["collection", "edit", "nightly"], answers)
    assert code == 0, output
    assert "Jobs, in run order (comma-separated) [ou, people]" in output
    assert "When people fails: abort the rest or continue [continue]" in output
    assert "not taken: 3 is not in the list (1 to 2)" in output
    assert "differences from the stored version:" in output
    assert "job collection 'nightly' updated" in output
    shown = run.json("collection", "show", "nightly")["definition"]
    assert shown["jobs"] == [{"job": "people", "on_failure": "continue"}]
    assert shown["description"] == "nightly sync" and "schedule" not in shown
    assert shown["notifications"].get("enabled", False) is False  # off (the default, so not exported)


def test_schedule_create_without_a_trigger_asks_each_part(cli: Cli, run: InProcess) -> None:  # noqa: F811
    answers = [
        "bad name!", "weekdays",  # name
        "",  # description
        "9", "weekly",  # kind
        "Europe/Berlinn", "Europe/Berlin",  # zone
        "mon,fry", "mon,fri",  # weekdays
        "25:00", "02:00",  # time
        "y",  # save
    ]
    code, output = in_terminal(cli, ["schedule", "create"], answers)
    assert code == 0, output
    assert "not taken: 'bad name!' is not a valid name" in output
    assert "not taken: pick one of 1 to 6" in output or "not taken: 9 is not in the list (1 to 6)" in output
    assert "not taken: unknown time zone 'Europe/Berlinn'" in output
    assert "not taken: --weekly: 'fry' is not a weekday" in output
    assert "not taken: --at '25:00' is not a time of day" in output
    assert "schedule 'weekdays' (new)" in output and "schedule 'weekdays' created" in output
    [trigger] = run.json("schedule", "show", "weekdays")["definition"]["triggers"]
    assert (trigger["kind"], trigger["weekdays"], trigger["timezone"]) == ("weekly", ["mon", "fri"], "Europe/Berlin")
    assert trigger["start"].endswith("T02:00:00")


def test_schedule_wizard_refuses_a_one_time_trigger_in_the_past_at_once(cli: Cli, run: InProcess) -> None:  # noqa: F811
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    answers = ["audit", "", "once", "", "2020-01-01T09:00", future, "y"]
    code, output = in_terminal(cli, ["schedule", "create"], answers)
    assert code == 0, output
    assert "not taken: schedule 'audit': trigger 1 (once at 2020-01-01 09:00 UTC) is in the past" in output
    assert "schedule 'audit' created" in output
