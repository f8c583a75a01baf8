"""``idsync collection``, ``idsync schedule``, ``idsync run terminate`` and
definitions as code, as a user runs them.

What only a real process shows (one-line errors and exit codes, a terminal
to answer questions in, the scheduler) runs the CLI as a subprocess; the
rest runs the same app in this process (``InProcess``), which is much
faster. The starting point (a store, sources, jobs) is made through the
services, as the CLI would.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from idsync.cli.app import app
from idsync.errors import IdsyncError
from tests.e2e.test_cli import Cli
from tests.scheduler_world import make_world

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class InProcess:
    """The idsync app run in this process, with the same home as a subprocess :class:`Cli`."""

    def __init__(self, home: Path) -> None:
        self.env = {"IDSYNC_HOME": str(home), "COLUMNS": "200", "IDSYNC_DATABASE_URL": ""}

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(app, list(args), env=self.env)
        if ok:
            assert result.exit_code == 0, (args, result.output, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def error(self, *args: str) -> str:
        """The one line a user would see for a command that fails with an idsync error."""
        result = self(*args, ok=False)
        assert isinstance(result.exception, IdsyncError), (result.output, result.exception)
        return result.exception.message


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home with the embedded directory ``dir`` (holding ou=People) and the
    jobs ``ou`` and ``people`` (two people), made through the services."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("IDSYNC_HOME", str(folder))
    world = make_world(folder)
    world.ws.close()
    yield folder


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home)


@pytest.fixture
def run(home: Path) -> InProcess:
    return InProcess(home)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """One error line on stderr, and at most a hint line after it."""
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("idsync: error:"), proc.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


def in_terminal(cli: Cli, args: list[str], answers: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal, answering each prompt in turn."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "idsync", *args], env=cli.env, stdin=slave, stdout=slave, stderr=slave, close_fds=True
    )
    os.close(slave)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            text = ANSI.sub("", output.decode(errors="replace"))
            if pending and re.search(r"[:?\]] ?$", text.rstrip(" ")):
                os.write(master, (pending.pop(0) + "\n").encode())
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=10), ANSI.sub("", output.decode(errors="replace")).replace("\r", "")


# ---------------------------------------------------------------- help


@pytest.mark.parametrize(
    "command",
    [
        [], ["create"], ["edit"], ["list"], ["show"], ["run"], ["preview"], ["remove"],
    ],
)
def test_every_collection_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, ["collection", *command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
    if command:
        assert "--json" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["schedule", "--help"], ["schedule", "create", "--help"], ["schedule", "edit", "--help"],
        ["schedule", "list", "--help"], ["schedule", "show", "--help"], ["schedule", "enable", "--help"],
        ["schedule", "disable", "--help"], ["schedule", "run-now", "--help"], ["schedule", "remove", "--help"],
        ["scheduler", "--help"], ["run", "terminate", "--help"],
    ],
)
def test_every_schedule_command_has_help(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and "Usage" in result.output


# ---------------------------------------------------------------- review your changes


def test_create_from_a_file_needs_a_confirmation(cli: Cli, run: InProcess, tmp_path: Path) -> None:
    spec = write(tmp_path / "c.yaml", "name: nightly\njobs: [ou, {job: people, on_failure: continue}]\n")
    refused = cli("collection", "create", "--from", str(spec), ok=False)
    one_line_error(refused, "nothing saved", "--yes")
    assert refused.returncode == 1
    assert "job collection 'nightly' (new)" in refused.stdout  # the review was shown
    assert run.json("collection", "list") == []
    created = run.json("collection", "create", "--from", str(spec), "--yes")
    assert created[0]["outcome"] == "created"
    assert ["jobs", "1. ou (on failure: abort)\n2. people (on failure: continue)"] in created[0]["review"]["summary"]
    assert [c["collection"]["name"] for c in run.json("collection", "list")] == ["nightly"]


def test_interactive_create_asks_then_saves_only_when_confirmed(cli: Cli, run: InProcess) -> None:
    answers = ["", "ou, people", "abort", "continue", "n", "n", "n"]  # no schedule exists: none is asked for
    code, output = in_terminal(cli, ["collection", "create", "nightly"], answers)
    assert code == 1, output
    assert "job collection 'nightly' (new)" in output and "2. people (on failure: continue)" in output
    assert "nothing saved" in output
    assert run.json("collection", "list") == []
    code, output = in_terminal(cli, ["collection", "create", "nightly"], [*answers[:-1], "y"])
    assert code == 0, output
    assert "job collection 'nightly' created" in output
    shown = run.json("collection", "show", "nightly")["definition"]
    assert shown["jobs"] == [{"job": "ou"}, {"job": "people", "on_failure": "continue"}]


def test_edit_shows_the_differences_and_reorders(run: InProcess) -> None:
    run("collection", "create", "nightly", "--job", "ou", "--job", "people", "--yes")
    refused = run("collection", "edit", "nightly", "--move-job", "people", "--position", "1", ok=False)
    assert isinstance(refused.exception, IdsyncError) and "nothing saved" in refused.exception.message
    assert "differences from the stored version:" in refused.stdout
    assert "    was:\n      1. ou (on failure: abort)\n      2. people (on failure: abort)" in refused.stdout
    assert run.json("collection", "show", "nightly")["definition"]["jobs"] == [{"job": "ou"}, {"job": "people"}]
    edited = run.json("collection", "edit", "nightly", "--move-job", "people", "--position", "1",
                      "--on-failure", "continue", "--yes")
    assert edited["outcome"] == "updated"
    assert [c["field"] for c in edited["review"]["changes"]] == ["jobs"]
    assert run.json("collection", "show", "nightly")["definition"]["jobs"] == [
        {"job": "people", "on_failure": "continue"}, {"job": "ou"},
    ]
    removed = run.json("collection", "edit", "nightly", "--remove-job", "ou", "--notify", "--notify-to",
                       "ops@example.org", "--notify-on", "failed", "--yes")
    fields = [c["field"] for c in removed["review"]["changes"]]
    assert fields == ["jobs", "notifications.enabled", "notifications.recipients", "notifications.triggers"]
    same = run.json("collection", "edit", "nightly", "--overlap", "skip", "--yes")
    assert same["outcome"] == "unchanged" and same["review"]["action"] == "unchanged"


def test_preview_when_finished_previews_the_first_run_after_saving(run: InProcess) -> None:
    made = run("collection", "create", "nightly", "--job", "people", "--preview-when-finished", "--yes")
    assert "job collection 'nightly' created" in made.stdout
    assert "1. job 'people' (on failure: abort), plan" in made.stdout
    assert "collection 'nightly' (nothing changed yet)" in made.stdout
    done = run.json("collection", "run", "nightly")
    assert done["run"]["state"] == "succeeded" and done["run"]["counts"]["created"] == 2  # the preview changed nothing


# ---------------------------------------------------------------- runs


def test_run_preview_show_and_history(cli: Cli, run: InProcess, tmp_path: Path) -> None:
    run("source", "add", "gone", "--path", str(tmp_path / "absent.csv"))
    write(tmp_path / "broken.yaml", "name: broken\nsource: gone\ndestination: {store: dir, container: \"ou=People,dc=example,dc=org\"}\n"
          "mappings: [{attribute: uid, from: id, key: true}, {attribute: cn, from: id}, {attribute: sn, from: id}]\n")
    run("job", "create", "--from", str(tmp_path / "broken.yaml"))
    run("collection", "create", "nightly", "--job", "broken", "--job", "people", "--yes")
    preview = run("collection", "preview", "nightly", "--json", ok=False)
    assert preview.exit_code == 4
    data = json.loads(preview.stdout)
    assert "CSV file not found" in data["jobs"][0]["error"] and data["jobs"][1]["skipped"]
    failed = cli("collection", "run", "nightly", ok=False)
    assert failed.returncode == 4
    assert "failed" in failed.stdout and "not run: job 'broken' failed and its on_failure is abort" in failed.stdout
    run("collection", "edit", "nightly", "--job", "broken", "--on-failure", "continue", "--yes")
    again = json.loads(run("collection", "run", "nightly", "--json", ok=False).stdout)
    assert [(j["job_name"], j["state"]) for j in again["jobs"]] == [("broken", "failed"), ("people", "succeeded")]
    assert {r["kind"] for r in run.json("run", "list")} == {"collection", "job"}
    shown = run("run", "show", str(again["run"]["id"]))
    assert "of collection 'nightly'" in shown.stdout and "job run" in shown.stdout
    assert [r["state"] for r in run.json("collection", "show", "nightly")["runs"]] == ["failed", "failed"]
    terminate = cli("run", "terminate", str(again["run"]["id"]), ok=False)
    one_line_error(terminate, "is failed: only a pending, queued or running run can be terminated")
    assert terminate.returncode == 7  # a state conflict
    run("collection", "remove", "nightly", "--yes")
    assert run.json("collection", "list") == []
    assert len(run.json("run", "list", "--job", "nightly")) == 2  # history kept


# ---------------------------------------------------------------- schedules


def test_schedules_list_show_targets_enable_disable_run_now_and_remove(run: InProcess) -> None:
    made = run.json("schedule", "create", "twice-weekly", "--weekly", "mon,thu", "--every", "2", "--at", "09:00",
                    "--start", "2027-01-04", "--tz", "Europe/Paris", "--yes")
    assert made[0]["outcome"] == "created"
    run("schedule", "create", "monthly", "--monthly-day", "1,15,last", "--at", "02:00", "--yes")
    run("schedule", "create", "fridays", "--monthly-ordinal", "last:fri", "--start", "2027-01-01T18:30", "--yes")
    run("schedule", "create", "quarter", "--cron", "*/15 * * * *", "--stop-after", "10m", "--yes")
    run("schedule", "create", "boot", "--startup", "--yes")
    run("collection", "create", "nightly", "--job", "people", "--schedule", "twice-weekly", "--yes")
    listed = {s["name"]: s for s in run.json("schedule", "list")}
    assert listed["twice-weekly"]["targets"] == ["nightly"]
    assert listed["twice-weekly"]["next_run"] == "2027-01-04T08:00:00+00:00"
    assert listed["twice-weekly"]["triggers"] == ["weekly every 2 weeks on Mon, Thu at 09:00 Europe/Paris from 2027-01-04"]
    assert listed["boot"]["startup"] and listed["boot"]["next_run"] is None
    assert listed["quarter"]["next_run"] is not None and listed["monthly"]["last_run"] is None
    shown = run.json("schedule", "show", "fridays")
    assert len(shown["upcoming"]) == 5
    assert all(datetime.fromisoformat(at).weekday() == 4 for at in shown["upcoming"])
    text = run("schedule", "list").stdout
    assert "at scheduler start" in text and "nightly" in text
    assert run.json("schedule", "disable", "monthly")["enabled"] is False
    assert {s["name"]: s["next_run"] for s in run.json("schedule", "list")}["monthly"] is None
    run("schedule", "enable", "monthly")
    now = run.json("schedule", "run-now", "twice-weekly")
    assert [r["run"]["state"] for r in now] == ["succeeded"] and now[0]["run"]["trigger"] == "run-now"
    after = {s["name"]: s for s in run.json("schedule", "list")}["twice-weekly"]
    assert after["last_state"] == "succeeded" and after["last_run"] is not None
    assert "schedule 'twice-weekly' is used by collection(s) nightly" in run.error("schedule", "remove", "twice-weekly", "--yes")
    assert "has no target collections" in run.error("schedule", "run-now", "monthly")
    run("schedule", "remove", "monthly", "--yes")
    assert "monthly" not in {s["name"] for s in run.json("schedule", "list")}
    edited = run.json("schedule", "edit", "quarter", "--daily", "--at", "03:00", "--replace-triggers",
                      "--misfire", "skip", "--yes")
    assert {c["field"] for c in edited["review"]["changes"]} == {"triggers", "misfire"}


def test_bad_input_is_one_clear_line(cli: Cli) -> None:
    for args, fragment in [
        (["schedule", "create", "s", "--daily", "--tz", "Mars/Base", "--yes"], "unknown time zone 'Mars/Base'"),
        (["schedule", "create", "s", "--once", "2027-02-30T09:00", "--yes"], "--once '2027-02-30T09:00' is not a valid date"),
        (["schedule", "create", "s", "--daily", "--start", "2027-03-01", "--expires", "2027-02-01", "--yes"],
         "expires (2027-02-01 00:00) must be after start (2027-03-01 00:00)"),
        (["schedule", "create", "s", "--weekly", "", "--yes"], "--weekly: give at least one weekday"),
        (["collection", "create", "c", "--job", "nope", "--yes"], "job 'nope' does not exist"),
    ]:
        one_line_error(cli(*args, ok=False), fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["schedule", "create", "s", "--monthly-day", "30,31", "--months", "2", "--yes"], "day 30 never occurs in February"),
        (["schedule", "create", "s", "--cron", "* * *", "--yes"], "has 3 fields"),
        (["schedule", "create", "s", "--yes"], "give a trigger"),
        (["schedule", "show", "nope"], "no schedule named 'nope'"),
        (["collection", "create", "c", "--job", "people", "--schedule", "nope", "--yes"], "schedule 'nope' does not exist"),
        (["collection", "edit", "nope", "--no-schedule", "--yes"], "no job collection named 'nope'"),
        (["collection", "run", "nope"], "no job collection named 'nope'"),
        (["collection", "edit", "c", "--move-job", "people"], "no job collection named 'c'"),
        (["run", "terminate", "999"], "no run 999"),
    ],
)
def test_more_bad_input(run: InProcess, args: list[str], fragment: str) -> None:
    message = run.error(*args)
    assert fragment in message and "\n" not in message


def test_an_empty_collection_is_refused(run: InProcess, tmp_path: Path) -> None:
    spec = write(tmp_path / "empty.yaml", "name: empty\njobs: []\n")
    assert "a collection needs at least one job" in run.error("collection", "create", "--from", str(spec), "--yes")


# ---------------------------------------------------------------- definitions as code


def test_schedules_and_collections_round_trip_through_export_and_apply(run: InProcess, tmp_path: Path) -> None:
    write(tmp_path / "more.yaml", """\
schedules:
  - name: nightly
    description: every night
    misfire: skip
    grace: 30m
    triggers:
      - {kind: daily, start: "2027-01-01T02:00", timezone: Europe/Paris, stop_after: 2h}
      - {kind: cron, expression: "0 12 * * 1-5", start: "2027-01-01T00:00", repeat_every: 15m, repeat_for: 1h}
      - {kind: startup, enabled: false}
collections:
  - name: night-run
    jobs: [ou, {job: people, on_failure: continue}]
    schedule: nightly
    notifications: {enabled: true, recipients: [ops@example.org], triggers: [failed, errors]}
    overlap: queue
""")
    applied = run.json("apply", "-f", str(tmp_path / "more.yaml"))
    assert [(a["kind"], a["outcome"]) for a in applied][-2:] == [("schedule", "created"), ("collection", "created")]
    exported = run("export").stdout
    assert "schedules:" in exported and "collections:" in exported and "grace: 30m" in exported
    fresh = InProcess(tmp_path / "other-home")
    write(tmp_path / "all.yaml", exported)
    assert {a["outcome"] for a in fresh.json("apply", "-f", str(tmp_path / "all.yaml"))} == {"created"}
    assert {a["outcome"] for a in fresh.json("apply", "-f", str(tmp_path / "all.yaml"))} == {"unchanged"}
    assert fresh("export").stdout == exported


def test_apply_names_the_file_line_and_field_of_a_bad_schedule(cli: Cli, run: InProcess, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", """\
schedules:
  - name: weekly
    triggers:
      - kind: weekly
        start: "2027-01-04T09:00"
        weekdays: []
collections:
  - name: c
    jobs: [people]
    schedule: weekly
""")
    one_line_error(cli("apply", "-f", str(bad), ok=False), f"{bad}:6:", "weekdays", "at least one weekday")
    unknown = write(tmp_path / "unknown.yaml", "collections:\n  - name: c\n    jobs: [people]\n    schedule: nope\n")
    assert "schedule 'nope' does not exist" in run.error("apply", "-f", str(unknown))
    assert run.json("collection", "list") == []


def test_a_scheduled_run_fires_once_from_the_command_line(cli: Cli, run: InProcess) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    run("schedule", "create", "soon", "--once", due.strftime("%Y-%m-%dT%H:%M:%S"), "--yes")
    run("collection", "create", "c", "--job", "people", "--schedule", "soon", "--yes")
    while datetime.now(UTC) < due:
        time.sleep(0.1)
    proc = cli("scheduler", "--once", "--tick", "0.2")
    assert "schedule 'soon' due at" in proc.stderr and "succeeded" in proc.stderr
    runs = run.json("run", "list")
    assert [(r["kind"], r["state"], r["trigger"]) for r in runs if r["kind"] == "collection"] == [
        ("collection", "succeeded", "schedule")
    ]
