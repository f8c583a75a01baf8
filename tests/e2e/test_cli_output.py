"""Output that fits a terminal and a pipe, and times in the right zone, as a
user sees them: tables whole when piped or as TSV, run kinds and collections,
no ``plan None``, settings as JSON, help without ``<bool>`` or ``--no-no-``,
schedule times in the schedule's zone, and a terminated run's exit code."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from idsync.domain.principals import Principal
from idsync.services import collection_runs
from idsync.services.collection_runs import Runtime
from idsync.services.workspace import Workspace
from tests.e2e.test_cli import ME, Cli
from tests.e2e.test_cli_collections import InProcess, write
from tests.scheduler_world import make_world


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home with the embedded directory ``dir`` and the jobs ``ou`` (run
    once) and ``people`` (two people), made through the services."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("IDSYNC_HOME", str(folder))
    make_world(folder).ws.close()
    yield folder


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home)


@pytest.fixture
def run(home: Path) -> InProcess:
    return InProcess(home)


LONG_DESCRIPTION = "Every person of the HR export, with the managers of each department and their deputies too"


def collection(run: InProcess, *extra: str) -> None:
    run("collection", "create", "nightly", "--job", "people", "--description", LONG_DESCRIPTION, *extra, "--yes")


# ---------------------------------------------------------------- pipes and formats


def test_a_piped_table_is_not_cut(cli: Cli) -> None:
    cli.env.pop("COLUMNS")
    cli("collection", "create", "nightly", "--job", "people", "--description", LONG_DESCRIPTION, "--yes")
    listed = cli("collection", "list").stdout
    assert LONG_DESCRIPTION in listed and "…" not in listed


def test_run_list_has_the_kind_and_collection_and_a_tsv_format(run: InProcess) -> None:
    collection(run)
    run("collection", "run", "nightly")
    lines = run("run", "list", "--format", "tsv").stdout.splitlines()
    header = lines[0].split("\t")
    assert header[:5] == ["id", "kind", "name", "collection", "state"]
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    assert [(r["kind"], r["name"], r["collection"], r["state"]) for r in rows[:2]] == [
        ("job", "people", "nightly", "succeeded"), ("collection", "nightly", "nightly", "succeeded"),
    ]
    assert (rows[2]["kind"], rows[2]["name"], rows[2]["collection"]) == ("job", "ou", "")  # a job run alone
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+", r["started"]) for r in rows)
    utc = run("run", "list", "--format", "tsv", "--utc").stdout.splitlines()[1].split("\t")
    assert utc[header.index("started")].endswith(" UTC")
    assert run("run", "list", "--format", "csv", ok=False).exit_code == 2


def test_run_show_names_zones_and_never_prints_plan_none(run: InProcess) -> None:
    collection(run)
    run("collection", "run", "nightly")
    runs = run.json("run", "list")
    parent = next(r for r in runs if r["kind"] == "collection")
    child = next(r for r in runs if r["kind"] == "job")
    shown = run("run", "show", str(parent["id"]), "--utc").stdout
    assert "plan None" not in shown and "plan " not in shown.splitlines()[1]
    assert re.search(r"started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by ", shown), shown
    assert re.search(rf"plan {child['plan_id']}$", run("run", "show", str(child["id"])).stdout.splitlines()[1])


def test_states_are_plain_words_in_a_pipe_and_coloured_on_a_terminal(cli: Cli) -> None:
    cli("collection", "create", "nightly", "--job", "people", "--yes")
    cli("collection", "run", "nightly")
    assert "\x1b[" not in cli("run", "list").stdout
    cli.env["FORCE_COLOR"] = "1"
    cli.env["TTY_COMPATIBLE"] = "1"
    coloured = cli("run", "list").stdout
    assert "\x1b[32msucceeded" in coloured, coloured


def test_settings_as_json(run: InProcess) -> None:
    settings = run.json("settings")
    assert {"setting", "variable", "value", "meaning"} <= set(settings[0])
    assert any(s["variable"] == "IDSYNC_HOME" for s in settings)


# ---------------------------------------------------------------- help


@pytest.mark.parametrize(
    "command",
    [[], ["store", "add"], ["source", "add"], ["schedule", "create"], ["schedule", "show"], ["run", "list"],
     ["collection", "edit"], ["job", "run"], ["settings"], ["scheduler"]],
)
def test_help_shows_no_bool_type_and_no_double_negative_flags(run: InProcess, command: list[str]) -> None:
    shown = run(*command, "--help").stdout
    assert "<bool>" not in shown
    assert "--no-no-" not in shown and "--no-password-stdin" not in shown and "--no-ask-password" not in shown


@pytest.mark.parametrize("group", ["store", "source", "job", "collection", "schedule", "run", "plan", "outbox"])
def test_command_lists_show_whole_sentences(run: InProcess, group: str) -> None:
    listed = run(group, "--help").stdout.split("Commands")[1]
    rows = [line.strip("│ ").rstrip() for line in listed.splitlines() if line.startswith("│ ")]
    starts = [row for row in rows if re.match(r"[a-z-]+\s{2,}\S", row)]
    assert starts
    for row in starts:
        assert row.endswith((".", ")")), f"{group}: {row!r} breaks mid-sentence"


def test_schedule_create_has_a_file_and_a_start_option_not_from(run: InProcess, tmp_path: Path) -> None:
    shown = run("schedule", "create", "--help").stdout
    assert "--file" in shown and "--start" in shown and "--from" not in shown
    made = run.json("schedule", "create", "nightly", "--daily", "--at", "02:00", "--start", "2027-01-04",
                    "--tz", "Europe/Berlin", "--yes")
    assert made[0]["outcome"] == "created"
    write(tmp_path / "s.yaml", "name: weekly\ntriggers:\n  - {kind: weekly, weekdays: [mon], start: '2027-01-04T06:00'}\n")
    assert run.json("schedule", "create", "--file", str(tmp_path / "s.yaml"), "--yes")[0]["outcome"] == "created"
    assert "not both" in run.error("schedule", "create", "x", "--file", str(tmp_path / "s.yaml"), "--daily", "--yes")
    assert run("schedule", "create", "x", "--from", "2027-01-04", "--daily", "--yes", ok=False).exit_code == 2


# ---------------------------------------------------------------- schedule times


def test_schedule_times_are_in_the_schedule_zone_named(run: InProcess) -> None:
    run("schedule", "create", "nightly", "--daily", "--at", "02:00", "--start", "2027-01-04",
        "--tz", "Europe/Berlin", "--yes")
    listed = run("schedule", "list", "--format", "tsv").stdout.splitlines()
    assert listed[1].split("\t")[2] == "2027-01-04 02:00 CET"
    shown = run("schedule", "show", "nightly", "--count", "2").stdout
    assert "next runs: 2027-01-04 02:00 CET, 2027-01-05 02:00 CET" in shown
    assert "01:00:00" not in shown


def test_schedule_show_from_an_instant(run: InProcess) -> None:
    run("schedule", "create", "nightly", "--daily", "--at", "02:00", "--start", "2027-01-04",
        "--tz", "Europe/Berlin", "--yes")
    shown = run("schedule", "show", "nightly", "--from", "2027-07-01", "--count", "2", "--utc").stdout
    assert "runs from 2027-07-01 00:00 CEST: 2027-07-01 02:00 CEST, 2027-07-02 02:00 CEST" in shown
    data = run.json("schedule", "show", "nightly", "--from", "2027-07-01T02:00+02:00", "--count", "1")
    assert data["upcoming"] == ["2027-07-01T00:00:00+00:00"] and data["upcoming_text"] == ["2027-07-01 02:00 CEST"]
    assert "'next week' is not an instant" in run.error("schedule", "show", "nightly", "--from", "next week")


# ---------------------------------------------------------------- terminated runs


def test_a_terminated_run_exits_9_names_who_and_why_and_is_no_error(home: Path, cli: Cli, run: InProcess) -> None:
    collection(run, "--overlap", "queue")
    ws = Workspace(database_url=f"sqlite:///{home / 'idsync.db'}", principal=Principal("tester"))
    try:
        collection_runs.start_run(ws, "nightly", Runtime(node="elsewhere"))  # holds the collection, never executes
    finally:
        ws.close()
    waiting = subprocess.Popen(
        [sys.executable, "-m", "idsync", "collection", "run", "nightly"],
        env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        queued: list[dict[str, object]] = []
        deadline = time.monotonic() + 60
        while not queued and time.monotonic() < deadline:
            queued = run.json("run", "list", "--state", "queued")
            time.sleep(0.2)
        assert queued, "the second run never queued"
        run_id = str(queued[0]["id"])
        run("run", "terminate", run_id, "--reason", "maintenance window")
        out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 9, (out, err)
    shown = cli("run", "show", run_id).stdout
    assert f"stopped: terminated by {ME}: maintenance window" in shown and "cause:" not in shown
    log = [line for line in shown.splitlines() if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ ", line)]
    assert any(re.search(rf" warning +terminated by {ME}: maintenance window$", line) for line in log), shown
    assert not any(" error " in line for line in log), shown
    assert "| 9 |" in (Path(__file__).parents[2] / "docs" / "reference.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------- the scheduler's log


def test_the_scheduler_log_is_one_line_format_with_run_starts_and_ends(cli: Cli, run: InProcess) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    berlin = due.astimezone(ZoneInfo("Europe/Berlin"))
    run("schedule", "create", "soon", "--once", berlin.strftime("%Y-%m-%dT%H:%M:%S"), "--tz", "Europe/Berlin", "--yes")
    collection(run, "--schedule", "soon")
    while datetime.now(UTC) < due:
        time.sleep(0.1)
    proc = cli("scheduler", "--once", "--tick", "0.2")
    lines = proc.stderr.splitlines()
    assert lines and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC (info|warning|error) +\S", line) for line in lines), lines
    assert any(f"schedule 'soon' due at {berlin:%Y-%m-%d %H:%M:%S} {berlin.tzname()}" in line for line in lines), lines
    started = [line for line in lines if re.search(r"run \d+ of collection 'nightly' started$", line)]
    ended = [line for line in lines if re.search(r"run \d+ of collection 'nightly' ended succeeded: read 2", line)]
    assert started and ended, lines


def test_run_times_are_in_the_viewer_zone_with_its_abbreviation_or_utc(cli: Cli) -> None:
    cli("collection", "create", "nightly", "--job", "people", "--yes")
    cli("collection", "run", "nightly")
    cli.env["TZ"] = "America/New_York"
    started = cli("run", "list", "--format", "tsv").stdout.splitlines()[1].split("\t")[5]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T", started), started
    in_utc = cli("run", "list", "--format", "tsv", "--utc").stdout.splitlines()[1].split("\t")[5]
    assert in_utc.endswith(" UTC") and in_utc != started


@pytest.mark.parametrize(
    ("command", "header"),
    [
        (("store", "list"), "name\tkind\twhere\tdescription"),
        (("source", "list"), "name\tkind\twhere\tdescription"),
        (("job", "list"), "name\tsource\tdestination\tobject\tdescription"),
        (("collection", "list"), "name\tjobs\tschedule\tlast run\tstate\tdescription"),
        (("plan", "list"), "id\tjob\tstate\tcreated\tby\tchanges\tapplied by run"),
        (("audit", "list"), "when\twho\taction\tkind\tname\twhat changed"),
    ],
)
def test_every_list_has_a_tsv_format_for_scripts(run: InProcess, command: tuple[str, ...], header: str) -> None:
    lines = run(*command, "--format", "tsv").stdout.splitlines()
    assert lines[0] == header
    assert all("\t" in line and "│" not in line for line in lines[1:])
