"""Schedulers and workers as real processes on a PostgreSQL database of their own.

Each test gets a fresh database on the server ``IDSYNC_TEST_POSTGRES_URL``
names (skipped without it, failed in CI), migrated and given the job queue by
``idsync db upgrade`` itself, and a :class:`~tests.scheduler_world.World` on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import create_engine, text

from idsync.domain.results import RunState
from idsync.store.runs_repo import RunRepository, RunRow
from tests.scheduler_world import World, make_world


def env_for(world: World, **settings: str) -> dict[str, str]:
    """The environment of an idsync process on *world*; *settings* are IDSYNC_ variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_")}
    env |= {"IDSYNC_HOME": str(world.root / "home"), "IDSYNC_DATABASE_URL": world.ws.database_url or ""}
    env |= {f"IDSYNC_{name.upper()}": value for name, value in settings.items()}
    return env


def idsync(world: World, *args: str, app_name: str | None = None, **settings: str) -> subprocess.Popen[str]:
    """``idsync ARGS`` as a process of its own; its PostgreSQL connections carry
    *app_name* (so a test can cut exactly them)."""
    env = env_for(world, **settings)
    if app_name is not None:
        env["PGAPPNAME"] = app_name
    return subprocess.Popen(
        [sys.executable, "-m", "idsync", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def scheduler(world: World, node: str, *args: str, lease: str = "1", **settings: str) -> subprocess.Popen[str]:
    return idsync(
        world, "scheduler", "--workers", "external", "--tick", "0.2", "--lease", lease, "--node", node, *args,
        app_name=node, **settings,
    )


def worker(world: World, node: str, *args: str, lease: str = "1", **settings: str) -> subprocess.Popen[str]:
    return idsync(world, "worker", "--lease", lease, "--node", node, *args, app_name=node, **settings)


def upgrade(world: World) -> str:
    """``idsync db upgrade``: its output."""
    done = subprocess.run(
        [sys.executable, "-m", "idsync", "db", "upgrade"], env=env_for(world), capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def postgres_world(root: Path, url: str) -> World:
    """A world on the empty PostgreSQL database *url*, with the job queue installed."""
    world = make_world(root, database_url=url)
    upgrade(world)
    return world


def stop(process: subprocess.Popen[str], timeout: float = 30) -> str:
    """SIGTERM *process*, wait for it; its standard error (what it said)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return process.stderr.read() if process.stderr else ""


def stopped_all(processes: list[subprocess.Popen[str]]) -> Iterator[str]:
    for process in processes:
        yield stop(process)


def collection_runs(world: World) -> list[RunRow]:
    with world.ws.db.session() as session:
        return sorted(RunRepository(session).list(kind="collection", limit=100000), key=lambda r: r.id)


def job_runs(world: World, parent: int) -> list[RunRow]:
    with world.ws.db.session() as session:
        return RunRepository(session).children(parent)


def queue_states(world: World, run_id: int) -> list[str]:
    """The states of the job queue's jobs for run *run_id* (succeeded ones are deleted)."""
    with world.ws.db.session() as session:
        rows = session.execute(
            text("SELECT status FROM procrastinate_jobs WHERE (args->>'run_id')::bigint = :run ORDER BY id"),
            {"run": run_id},
        )
        return [str(row[0]) for row in rows]


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def running_on(world: World, node: str) -> Callable[[], bool]:
    return lambda: any(r.state is RunState.RUNNING and r.node == node for r in collection_runs(world))


def cut_connections(url: str, app_name: str) -> int:
    """pg_terminate_backend every connection of the process named *app_name*; how many."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                    {"name": app_name},
                ).all()
            )
    finally:
        engine.dispose()
