"""``idsync status``: the installation at a glance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idsync.cli.app import app
from idsync.services import collection_runs
from tests.scheduler_world import World, make_world


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path))
    monkeypatch.setenv("IDSYNC_DATABASE_URL", "")
    built = make_world(tmp_path)
    yield built
    built.ws.close()


def status(*args: str) -> str:
    result = CliRunner().invoke(app, ["status", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_status_shows_recent_runs_failures_the_next_run_and_the_outbox(world: World) -> None:
    world.schedule("nightly", [{"kind": "daily", "start": "2027-01-04T02:00", "timezone": "Europe/Paris"}])
    world.collection("hr", ["people"], schedule="nightly")
    world.csv_job("broken", ["1,Ada,Lovelace"])
    (world.root / "broken.csv").unlink()
    world.collection("bad", ["broken"])
    collection_runs.run_collection(world.ws, "hr")
    failed = collection_runs.run_collection(world.ws, "bad")

    text = status()
    assert "the bootstrap administrator: no idsync user exists yet" in text
    assert "runs in the last 24 h:" in text
    assert "succeeded" in text and "failed" in text
    assert f"failed: run {failed.run.id} of collection bad" in text
    assert "schedule nightly (hr)" in text and " CET" in text
    assert "outbox: 0 waiting, 0 failed" in text

    data = json.loads(status("--json"))
    assert data["bootstrap"] is True
    assert "operator" in data["roles"] and "approver" not in data["roles"]
    assert [run["id"] for run in data["failed"]] == [failed.run.id]
    assert data["next_runs"][0]["schedule"] == "nightly"
