"""Definitions checked when saved, from the command line: ``job create
--from`` against the source and the store, ``apply`` and the other
``--from`` files with every error at its file:line, ``--offline``."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli_collections import InProcess, home, run, write  # noqa: F401 - the fixtures these tests use

JOBS = """\
jobs:
  - name: staff
    source: people
    destination: {store: dir, container: "ou=People,dc=example,dc=org"}
    mappings:
      - {attribute: uid, from: id, key: true}
      - {attribute: mail, from: emailAddress}
  - name: typo
    source: people
    destination: {store: dir, container: "ou=People,dc=example,dc=org"}
    mappings:
      - {attribute: uid, from: id, key: true}
      - {attribute: emial, from: last}
"""


def test_job_create_refuses_every_job_that_does_not_fit_with_its_line(run: InProcess, tmp_path: Path) -> None:  # noqa: F811
    spec = write(tmp_path / "jobs.yaml", JOBS)
    message = run.error("job", "create", "--from", str(spec))
    assert message.startswith(f"{spec}: 2 errors, nothing saved:")
    assert f"{spec}:2: job 'staff': mapping 'mail' reads field 'emailAddress'" in message
    assert f"{spec}:8: job 'typo': attribute 'emial' is not in the schema of store 'dir'" in message
    assert [j["name"] for j in run.json("job", "list")] == ["ou", "people"]
    saved = run.json("job", "create", "--from", str(spec), "--offline")
    assert [(j["job"], j["outcome"]) for j in saved] == [("staff", "created"), ("typo", "created")]


def test_a_job_whose_source_cannot_be_read_is_saved_with_a_warning(run: InProcess, home: Path, tmp_path: Path) -> None:  # noqa: F811
    (home / "people.csv").unlink()
    spec = write(tmp_path / "job.yaml", JOBS.split("  - name: typo")[0])
    result = run("job", "create", "--from", str(spec))
    assert "idsync: warning: job 'staff': saved without checking its fields" in result.stderr
    assert "job 'staff' created" in result.stdout


def test_apply_lists_every_error_once(run: InProcess, tmp_path: Path) -> None:  # noqa: F811
    spec = write(tmp_path / "all.yaml", JOBS + "schedules:\n  - name: past\n    triggers: [{kind: once, start: '2020-01-01T09:00'}]\n")
    message = run.error("apply", "-f", str(spec))
    assert message.startswith(f"{spec}: 3 errors, nothing saved:")
    assert f"{spec}:15: schedule 'past': trigger 1 (once at 2020-01-01 09:00 UTC) is in the past" in message
    assert run.json("schedule", "list") == []


def test_collection_and_schedule_files_give_every_error_with_its_line(run: InProcess, tmp_path: Path) -> None:  # noqa: F811
    collections = write(tmp_path / "c.yaml", "- name: a\n  jobs: []\n- name: b\n  jobs: [ou]\n  overlap: sometimes\n")
    message = run.error("collection", "create", "--from", str(collections), "--yes")
    assert message.startswith(f"{collections}: 2 errors, nothing saved:")
    assert f"{collections}:1: job collection 'a': no jobs" in message and f"{collections}:5: " in message
    schedules = write(tmp_path / "s.yaml", "name: w\ntriggers:\n  - {kind: weekly, start: '2030-01-01T02:00', weekdays: []}\n")
    assert run.error("schedule", "create", "--file", str(schedules), "--yes").startswith(f"{schedules}:3: ")
