"""A scheduler outlives its database going away for a while.

Real processes: ``idsync scheduler`` runs on its own; another process locks
its SQLite file (``BEGIN EXCLUSIVE`` from the sqlite3 shell) for longer than
many ticks and busy timeouts, or its PostgreSQL database cuts every
connection (``pg_terminate_backend``) and refuses new ones for a while, as
a restarting server does. Meanwhile a run
is in progress and a schedule falls due every two seconds. Afterwards the
scheduler is still alive, said each failure in one line (no traceback),
the run finished with every change counted, and every occurrence of the
schedule was recorded once and started once.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from idsync.domain.results import RunState
from idsync.store.runs_repo import RunRow
from idsync.store.scheduling_repo import SchedulingRepository
from tests.integration.test_scheduler_processes import collection_runs, idsync, job_runs, wait_until
from tests.integration.test_store_postgres import Server, server
from tests.scheduler_world import World, make_world, now_utc, wall

__all__ = ["server"]

ROWS = 300
"""People the long run writes, one every ROW_DELAY seconds from the gated source."""
ROW_DELAY = 0.03
EVERY = 2
"""Seconds between two occurrences of the schedule ``often``."""


@dataclass
class Outage:
    """When the database was away, as the test's clock saw it."""

    began: datetime
    ended: datetime


Disrupt = Callable[[World], Outage]


@pytest.fixture
def sqlite_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    made = make_world(tmp_path)
    yield made
    made.ws.close()


@pytest.fixture
def postgres_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    url = server.create()
    made = make_world(tmp_path, database_url=url)
    yield made
    made.ws.close()
    server.drop(url)


def lock_sqlite(seconds: float) -> Disrupt:
    """Hold the world's SQLite file locked by a sqlite3 shell for *seconds*."""

    def disrupt(world: World) -> Outage:
        file = world.ws.db.file
        assert file is not None
        shell = subprocess.Popen(
            ["sqlite3", str(file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert shell.stdin is not None and shell.stdout is not None
        try:
            # The shell waits for the scheduler's write in progress, if any, before it takes the lock.
            shell.stdin.write(".timeout 10000\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n")
            shell.stdin.flush()
            assert shell.stdout.readline().strip() == "locked"
            began = now_utc()
            time.sleep(seconds)
            shell.stdin.write("COMMIT;\n.quit\n")
            shell.stdin.flush()
            assert shell.wait(timeout=30) == 0
        finally:
            shell.kill()
        return Outage(began, now_utc())

    return disrupt


def restart_postgres(server: Server, seconds: float) -> Disrupt:
    """What a PostgreSQL restart looks like to its clients: every connection to
    the world's database is cut (``pg_terminate_backend``) and new ones are
    refused for *seconds*, then accepted again."""

    def disrupt(world: World) -> Outage:
        name = make_url(world.ws.db.url).database
        began = now_utc()
        with server.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            try:
                cut = conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": name},
                ).all()
                assert cut  # the scheduler's connections were there to cut
                time.sleep(seconds)
            finally:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        return Outage(began, now_utc())

    return disrupt


def long_run(world: World) -> RunRow | None:
    runs = [r for r in collection_runs(world) if r.collection_name == "long"]
    return runs[0] if runs else None


def written_by_long_run(world: World) -> int:
    run = long_run(world)
    return sum(j.counts.created for j in job_runs(world, run.id)) if run is not None else 0


def quick_runs(world: World) -> list[RunRow]:
    return [r for r in collection_runs(world) if r.collection_name == "quick"]


def often_due_times(world: World) -> list[tuple[int, datetime]]:
    with world.ws.db.session() as session:
        found = SchedulingRepository(session).occurrences("often", limit=1000)
    return sorted((o.id, o.due_at) for o in found)


def outlive(world: World, disrupt: Disrupt, **settings: str) -> tuple[Outage, str]:
    """Run a scheduler through *disrupt*; the outage and what the scheduler said."""
    gate = world.gated_job("slow", [f"{n},First{n},Last{n}" for n in range(1000, 1000 + ROWS)], delay=ROW_DELAY)
    start = now_utc() + timedelta(seconds=3)
    world.schedule("soon", [{"kind": "once", "start": wall(start)}])
    # An occurrence every EVERY seconds for three minutes: one-time triggers,
    # since a repeat may not be shorter than a minute.
    world.schedule(
        "often", [{"kind": "once", "start": wall(start + timedelta(seconds=EVERY * n))} for n in range(90)]
    )
    world.collection("long", ["slow"], schedule="soon")
    world.collection("quick", ["people"], schedule="often")
    gate.serve()
    process = idsync(world, "scheduler", "--tick", "0.2", batch_size="20", **settings)
    try:
        gate.wait_reading(30)
        gate.open()
        wait_until(lambda: written_by_long_run(world) >= 40, timeout=30)
        wait_until(lambda: any(r.state is RunState.SUCCEEDED for r in quick_runs(world)), timeout=30)
        outage = disrupt(world)
        assert process.poll() is None, "the scheduler died during the outage"
        wait_until(lambda: (run := long_run(world)) is not None and run.state.finished, timeout=90)
        # Two more occurrences due once the scheduler is back, and started.
        after = outage.ended + timedelta(seconds=10 + 2 * EVERY)
        wait_until(lambda: now_utc() > after, timeout=30)
        wait_until(lambda: all(r.state.finished for r in quick_runs(world)), timeout=30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    return outage, process.stderr.read() if process.stderr else ""


def assert_nothing_lost(world: World, outage: Outage, said: str, failure: str) -> None:
    assert "Traceback" not in said, said
    failures = [line for line in said.splitlines() if failure in line]
    assert failures, said  # the outage was felt...
    assert all("trying again in" in line for line in failures), failures  # ...said in one line each...
    assert len(failures) <= 20, failures  # ...with a growing wait, not once a tick
    # The run in progress waited for the database and finished, every change counted.
    run = long_run(world)
    assert run is not None and run.state is RunState.SUCCEEDED, (run, said)
    assert [(j.state, j.counts.created) for j in job_runs(world, run.id)] == [(RunState.SUCCEEDED, ROWS)]
    # Each occurrence of ``often`` was recorded once (those that fell due
    # during the outage are summed up as missed when it ends, as after any
    # downtime)...
    occurrences = often_due_times(world)
    dues = [due for _, due in occurrences]
    assert dues == sorted(set(dues)), dues
    assert dues[-1] > outage.ended + timedelta(seconds=EVERY)
    # ...and started at most once: never two runs for one occurrence (one due
    # while the previous ran is skipped, the overlap policy).
    by_occurrence: dict[int, list[RunRow]] = {}
    for run in quick_runs(world):
        assert run.occurrence_id is not None
        by_occurrence.setdefault(run.occurrence_id, []).append(run)
    assert set(by_occurrence) <= {occurrence for occurrence, _ in occurrences}
    assert all(len(runs) == 1 for runs in by_occurrence.values()), by_occurrence
    states = {occurrence: runs[0].state for occurrence, runs in by_occurrence.items()}
    # (A run still going when the scheduler is stopped at the end is terminated by the shutdown.)
    allowed = {RunState.SUCCEEDED, RunState.SKIPPED, RunState.MISSED, RunState.TERMINATED}
    assert set(states.values()) <= allowed, states
    # The scheduler went on scheduling once the database was back (within a
    # backoff wait): what fell due after that ran as usual.
    resumed = min(r.created_at for r in quick_runs(world) if r.created_at > outage.ended)
    assert resumed - outage.ended < timedelta(seconds=10)
    later = [o for o, due in occurrences if due > resumed]
    assert later and all(states.get(o) in (RunState.SUCCEEDED, RunState.TERMINATED) for o in later), states
    assert any(states.get(o) is RunState.SUCCEEDED for o in later), states


def test_a_scheduler_outlives_its_sqlite_file_locked_by_another_process(sqlite_world: World) -> None:
    """Locked for 6 s: 30 ticks, 30 busy timeouts of 0.2 s."""
    outage, said = outlive(sqlite_world, lock_sqlite(6.0), database_busy_timeout="0.2")
    assert outage.ended - outage.began >= timedelta(seconds=5)
    assert_nothing_lost(sqlite_world, outage, said, "is locked by another process")


@pytest.mark.postgres
def test_a_scheduler_reconnects_when_postgresql_restarts(postgres_world: World, server: Server) -> None:
    outage, said = outlive(postgres_world, restart_postgres(server, 5.0))
    assert_nothing_lost(postgres_world, outage, said, "PostgreSQL at")
