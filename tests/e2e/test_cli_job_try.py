"""``idsync job try``: the entries a job's first rows map to, and the rows that fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idsync.cli.app import app
from idsync.services import history
from tests.scheduler_world import PEOPLE, World, make_world


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path))
    monkeypatch.setenv("IDSYNC_DATABASE_URL", "")
    built = make_world(tmp_path)
    yield built
    built.ws.close()


def job_try(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["job", "try", *args], env={"COLUMNS": "200"})
    assert result.exit_code == code, (result.output, result.exception)
    return result.stdout


def test_job_try_prints_the_entries_and_writes_nothing(world: World) -> None:
    plans = len(history.list_plans(world.ws))
    text = job_try("people")
    assert f"uid=1,{PEOPLE}  (line 2, key 1)" in text
    assert "  cn: Ada Lovelace" in text and "  objectClass: top; person; organizationalPerson; inetOrgPerson" in text
    assert "job 'people': 2 row(s) of data source 'people': 2 entries, 0 error(s) (nothing written)" in text
    assert len(history.list_plans(world.ws)) == plans


def test_job_try_reports_failing_rows_as_json_with_status_3(world: World) -> None:
    (world.root / "people.csv").write_text("id,first,last\n1,Ada,Lovelace\n,Nobody,Here\n3,Grace,Hopper\n", "utf-8")
    data = json.loads(job_try("people", "--rows", "2", "--json", code=3))
    assert data["read"] == 2 and [e["dn"] for e in data["entries"]] == [f"uid=1,{PEOPLE}"]
    assert data["entries"][0]["attributes"]["sn"] == ["Lovelace"]
    [error] = data["errors"]
    assert (error["line"], error["attribute"]) == (3, "uid") and "key 'uid' is empty" in error["message"]


def test_job_try_refuses_more_than_fifty_rows(world: World) -> None:
    result = CliRunner().invoke(app, ["job", "try", "people", "--rows", "51"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "less than or equal to 50" in result.output
