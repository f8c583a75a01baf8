"""The scheduler as real processes on one SQLite file: exactly once across
processes, a killed scheduler's run (or a killed ``idsync job run``) marked
failed when its lease runs out, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta

from idsync.domain.results import RunState
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.store.scheduling_repo import NODE_LOST, SchedulingRepository
from tests.scheduler_world import World, now_utc, wall
from tests.together import StartLine

# What a held ``idsync`` process loads before the start line: the command
# and everything the scheduler uses, so that after the go it only runs.
HELD_PREPARE = """
import idsync.cli.app, idsync.cli.scheduler, idsync.runtime.scheduler, idsync.services.collection_runs
"""
HELD_RUN = """
sys.argv[0] = "idsync"
idsync.cli.app.main()
"""


def idsync(world: World, *args: str, start: StartLine | None = None, **settings: str) -> subprocess.Popen[str]:
    """``idsync ARGS`` as a process of its own on the world's home; *settings*
    are IDSYNC_ variables (``batch_size="20"`` is IDSYNC_BATCH_SIZE=20). With
    *start*, the process waits at that start line for its go."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_")}
    env |= {
        "IDSYNC_HOME": str(world.root / "home"),
        "IDSYNC_DATABASE_URL": world.ws.database_url or "",
    }
    env |= {f"IDSYNC_{name.upper()}": value for name, value in settings.items()}
    if start is not None:
        return start.start(HELD_PREPARE, HELD_RUN, args, env=env, stdout=subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, "-m", "idsync", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def scheduler(
    world: World, *args: str, batch: int | None = None, start: StartLine | None = None
) -> subprocess.Popen[str]:
    settings = {"batch_size": str(batch)} if batch is not None else {}
    return idsync(world, "scheduler", "--tick", "0.2", *args, start=start, **settings)


def collection_runs(world: World) -> list[RunRow]:
    with world.ws.db.session() as session:
        return sorted(RunRepository(session).list(kind="collection"), key=lambda r: r.id)


def job_runs(world: World, parent: int) -> list[RunRow]:
    with world.ws.db.session() as session:
        return RunRepository(session).children(parent)


def kill_and_outlive_the_lease(world: World, process: subprocess.Popen[str], running: Callable[[], RunRow]) -> None:
    """SIGKILL *process*, check its run is still marked running, wait past its
    1 s lease, and let another scheduler tick once (it marks lost runs failed)."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert running().state is RunState.RUNNING  # nobody cleaned up
    time.sleep(1.2)  # the lease runs out
    tick_once(world, "survivor")


def tick_once(world: World, node: str) -> None:
    """One tick of another scheduler, with a 1 s lease."""
    other = scheduler(world, "--once", "--lease", "1", "--node", node)
    assert other.wait(timeout=60) == 0, other.stderr.read() if other.stderr else ""


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def due_soon(world: World, seconds: float = 1.5) -> None:
    """A schedule ``soon`` with a one-time trigger a moment from now, and wait until it is due."""
    due = now_utc() + timedelta(seconds=seconds + 1)
    world.schedule("soon", [{"kind": "once", "start": wall(due)}])
    wait_until(lambda: now_utc() >= due)


def test_schedulers_started_together_start_a_due_occurrence_once(world: World) -> None:
    world.collection("c", ["people"], schedule="soon")
    due_soon(world)
    line = StartLine(world.root / "start")
    processes = [scheduler(world, "--once", "--node", f"node-{n}", start=line) for n in range(3)]
    line.go()
    outcomes = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in processes]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    assert all("Traceback" not in err for _, err in outcomes)
    runs = collection_runs(world)
    assert [(r.state, r.trigger) for r in runs] == [(RunState.SUCCEEDED, "schedule")]
    with world.ws.db.session() as session:
        occurrences = SchedulingRepository(session).occurrences("soon")
    assert len(occurrences) == 1 and occurrences[0].node == runs[0].node
    assert sum("started" in err and "run " in err for _, err in outcomes) >= 1


def test_a_killed_schedulers_run_is_marked_failed_once_its_lease_expires(world: World) -> None:
    gate = world.gated_job("slow", ["7,Edsger,Dijkstra"])
    world.collection("c", ["slow"], schedule="soon")
    due_soon(world)
    gate.serve()
    first = scheduler(world, "--lease", "1", "--node", "doomed")
    try:
        gate.wait_reading(30)
        run = collection_runs(world)[0]
        assert run.state is RunState.RUNNING and run.node == "doomed"
        kill_and_outlive_the_lease(world, first, lambda: collection_runs(world)[0])
    finally:
        first.kill()  # already dead unless an assertion failed first
    run = collection_runs(world)[0]
    assert (run.state, run.error) == (RunState.FAILED, NODE_LOST)
    assert [(j.job_name, j.state, j.error) for j in job_runs(world, run.id)] == [
        ("slow", RunState.FAILED, NODE_LOST)
    ]
    assert len(collection_runs(world)) == 1  # the occurrence was not started again
    gate.open()


def standalone_runs(world: World, job: str = "slow") -> list[RunRow]:
    """Runs of *job* started on their own (``idsync job run``), not by a collection."""
    with world.ws.db.session() as session:
        return [r for r in RunRepository(session).list(kind="job") if r.parent_run_id is None and r.job_name == job]


def test_a_killed_job_run_is_marked_failed_once_its_lease_expires(world: World) -> None:
    """``idsync job run`` outside the scheduler holds a lease too: killed, its
    run does not stay ``running`` for ever."""
    gate = world.gated_job("slow", ["7,Edsger,Dijkstra"])
    gate.serve()
    process = idsync(world, "job", "run", "slow", run_lease_seconds="1")
    try:
        gate.wait_reading(30)
        (run,) = standalone_runs(world)
        assert run.state is RunState.RUNNING and run.node and run.lease_until is not None
        kill_and_outlive_the_lease(world, process, lambda: standalone_runs(world)[0])
    finally:
        process.kill()  # already dead unless an assertion failed first
    (run,) = standalone_runs(world)
    assert (run.state, run.error) == (RunState.FAILED, NODE_LOST)
    gate.open()


def test_a_job_run_longer_than_its_lease_keeps_it_and_finishes(world: World) -> None:
    """The heartbeat renews the lease while the run works: a scheduler looking
    meanwhile leaves it alone, and the run ends as it should, lease released."""
    gate = world.gated_job("slow", ["7,Edsger,Dijkstra", "8,Barbara,Liskov"])
    gate.serve()
    process = idsync(world, "job", "run", "slow", run_lease_seconds="1")
    gate.wait_reading(30)
    time.sleep(1.5)  # longer than the lease: only renewals keep it
    tick_once(world, "other")
    assert standalone_runs(world)[0].state is RunState.RUNNING
    gate.open()
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    (run,) = standalone_runs(world)
    assert (run.state, run.counts.created, run.lease_until) == (RunState.SUCCEEDED, 2, None)


def test_sigterm_stops_the_run_at_its_next_batch_and_leaves_nothing_running(world: World) -> None:
    # The embedded directory commits every 500 changes: wait for a first commit.
    rows = [f"{n},First{n},Last{n}" for n in range(1000, 3000)]
    gate = world.gated_job("slow", rows, delay=0.002)
    world.collection("c", ["slow"], schedule="soon")
    due_soon(world)
    gate.serve()
    process = scheduler(world, "--node", "node-a", batch=20)
    gate.wait_reading(30)
    gate.open()
    run_id = collection_runs(world)[0].id
    wait_until(lambda: sum(j.counts.created for j in job_runs(world, run_id)) >= 500)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    stderr = process.stderr.read() if process.stderr else ""
    assert "Traceback" not in stderr and "stopped" in stderr
    run = collection_runs(world)[0]
    assert (run.state, run.error) == (RunState.TERMINATED, "terminated: the scheduler was shut down")
    jobs = job_runs(world, run.id)
    assert [(j.state, j.error) for j in jobs] == [(RunState.TERMINATED, run.error)]
    # The changes made before the stop stay, and are counted in the run.
    assert 0 < jobs[0].counts.created < len(rows)
    with world.ws.db.session() as session:
        assert RunRepository(session).list(state=RunState.RUNNING) == []
