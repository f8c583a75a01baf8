"""Stopping a run takes effect within seconds whatever its records do: a run
of many slow records, or of records stuck until their time limit, ends
``terminated`` soon after it is terminated or passes its ``stop_after``,
not at the end of its batch. Through the service layer, on SQLite and the
embedded directory (real components; it takes seconds, hence not a unit test)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.services import collection_runs, jobs
from idsync.services.collection_runs import Runtime
from idsync.services.workspace import Workspace
from idsync.store.runs_repo import RunRepository, RunRow
from tests.scheduler_world import PEOPLE, World, make_world

SLOW = "sum(1 for a in range(500) for b in range(2 * 10**4)) and source['last']"
"""About a tenth of a second of CPU per record: 100 records take ten seconds or more."""

STUCK = "sum(1 for a in range(10**5) for b in range(10**5)) and source['last']"
"""Runs for hours unless stopped: each record ends at its time limit."""


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    made = make_world(tmp_path)
    yield made
    made.ws.close()


def slow_job(world: World, expression: str, records: int = 100) -> None:
    path = world.root / "slow.csv"
    path.write_text("id,last\n" + "".join(f"{i},L{i}\n" for i in range(records)), encoding="utf-8")
    world.define("source", {"name": "slow", "kind": "csv", "path": str(path)})
    world.define("job", {
        "name": "slow",
        "source": "slow",
        "destination": {"store": "dir", "container": PEOPLE},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "cn", "from": "last"},
            {"attribute": "sn", "expression": expression},
        ],
    })


def running_run(world: World, job: str, timeout: float = 15.0) -> RunRow:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with world.ws.db.session() as session:
            found = [r for r in RunRepository(session).list(job_name=job) if r.state is RunState.RUNNING]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no run of {job} started")


def run_in_thread(world: World) -> tuple[threading.Thread, list[RunRow]]:
    ended: list[RunRow] = []

    def run() -> None:
        ws = Workspace(database_url=world.ws.database_url, principal=Principal("runner"))
        try:
            ended.append(jobs.run_job(ws, "slow"))
        finally:
            ws.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, ended


@pytest.mark.parametrize(("expression", "limit", "within"), [(SLOW, "5", 4.0), (STUCK, "2", 5.0)])
def test_terminating_a_run_of_slow_records_ends_it_within_seconds(
    world: World, monkeypatch: pytest.MonkeyPatch, expression: str, limit: str, within: float
) -> None:
    monkeypatch.setenv("IDSYNC_RECORD_TIME_LIMIT_SECONDS", limit)
    slow_job(world, expression)
    thread, ended = run_in_thread(world)
    run = running_run(world, "slow")
    time.sleep(0.5)  # into its first batch
    asked = time.monotonic()
    collection_runs.terminate_run(world.ws, run.id, "maintenance window")
    thread.join(timeout=60)
    took = time.monotonic() - asked
    (finished,) = ended
    assert finished.state is RunState.TERMINATED and finished.error.endswith(": maintenance window")
    assert finished.error.startswith(f"terminated by {world.ws.actor}")
    assert took < within, f"the run took {took:.1f} s to stop"
    assert finished.counts.read < 100


def test_a_collection_run_past_its_stop_after_ends_within_seconds(world: World) -> None:
    slow_job(world, SLOW)
    world.collection("nightly", ["slow"])
    runtime = Runtime()
    started = collection_runs.start_run(world.ws, "nightly", runtime, stop_after=timedelta(seconds=2))
    assert started.fence is not None
    begun = time.monotonic()
    finished = collection_runs.execute_run(world.ws, started.run_id, started.fence, runtime)
    took = time.monotonic() - begun
    assert finished.state is RunState.TERMINATED
    assert finished.error is not None and "stop_after" in finished.error
    assert took < 5.0, f"the run took {took:.1f} s to stop"
    (child,) = collection_runs.report(world.ws, started.run_id).jobs
    assert child.state is RunState.TERMINATED and child.counts.read < 100
