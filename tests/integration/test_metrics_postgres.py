"""Metrics on PostgreSQL: ``idsync scheduler --metrics-port`` as a real
process, scraped before and after the run it starts, and the workers' queue
depth read from procrastinate's own table."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import inspect

from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.runtime import metrics as exported
from idsync.services.workspace import Workspace
from idsync.store.db import Database
from tests.integration.test_scheduler_processes import collection_runs, idsync, wait_until
from tests.integration.test_store_postgres import Server, db, fresh, migrated, pg_url, server
from tests.scheduler_world import World, make_world, now_utc, wall
from tests.unit.test_metrics import check_database_sums

__all__ = ["db", "fresh", "migrated", "pg_url", "server"]

pytestmark = pytest.mark.postgres

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: Database) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    made = make_world(tmp_path, database_url=db.url)
    yield made
    made.ws.close()


def scrape(url: str, timeout: float = 30.0) -> Samples:
    """The metrics at *url*, once the server there answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.get(url, timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.1)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return parse(answer.text)


CREATED = ("idsync_objects_changed_total", (("operation", "created"),))
SUCCEEDED = ("idsync_runs", (("kind", "collection"), ("state", "succeeded")))
LAGS = ("idsync_scheduler_lag_occurrences", ())


def test_a_scheduler_serves_metrics_that_move_as_its_runs_happen(world: World) -> None:
    port = free_port()
    process = idsync(world, "scheduler", "--tick", "0.2", "--metrics-port", str(port), log_format="json")
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        before = scrape(url)  # the scheduler is up, with nothing to do yet
        world.schedule("soon", [{"kind": "once", "start": wall(now_utc() + timedelta(seconds=2))}])
        world.collection("c", ["people"], schedule="soon")
        wait_until(lambda: [r.state for r in collection_runs(world)] == [RunState.SUCCEEDED], timeout=60)
        after = scrape(url)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    said = [json.loads(line) for line in err.splitlines() if line.strip()]  # JSON logs: one object a line
    assert f"metrics served at {url}" in [item["message"] for item in said]
    of_node = [item for item in said if not item["message"].startswith("metrics served at")]
    assert len({item.get("node") for item in of_node}) == 1 and of_node[0]["node"], of_node  # each names the node
    [ended] = [item for item in said if " ended succeeded" in item["message"]]
    assert (ended["collection"], ended["run_id"]) == ("c", collection_runs(world)[0].id)
    assert before[("idsync_database_up", ())] == after[("idsync_database_up", ())] == 1
    assert after[CREATED] - before[CREATED] == 2  # the two people
    assert (before.get(SUCCEEDED, 0), after[SUCCEEDED]) == (0, 1)
    assert (before[LAGS], after[LAGS]) == (0, 1)
    lag = after[("idsync_scheduler_lag_seconds", (("quantile", "0.95"),))]
    assert 0 <= lag < 30, lag  # ticks of 0.2 s: started within seconds of its due time, even on a loaded machine
    count = ("idsync_run_duration_seconds_count", (("kind", "collection"),))
    assert after[count] - before.get(count, 0) == 1
    assert ("process_resident_memory_bytes", ()) in after
    print(f"\nscheduler lag of the run (p95 of one): {lag:.3f} s")


def test_the_workers_queue_depth_is_read_from_procrastinates_table(server: Server, fresh: str, tmp_path: Path) -> None:
    import procrastinate

    database = Database(fresh)
    database.ensure_schema()
    with database.engine.connect() as conn:
        has_queue = inspect(conn).has_table("procrastinate_jobs")
    ws = Workspace(principal=Principal.system("test"), database_url=fresh)
    registry = exported.registry(ws)
    if not has_queue:
        assert ("idsync_worker_jobs", (("status", "todo"),)) not in parse(exported.exposition(registry).decode())
    conninfo = fresh.replace("postgresql+psycopg://", "postgresql://")
    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=conninfo))

    @app.task(name="probe")
    def probe() -> None:
        """Never run: the test only counts it waiting."""

    with app.open():
        if not has_queue:
            app.schema_manager.apply_schema()
        for _ in range(3):
            probe.defer()
    try:
        scraped = parse(exported.exposition(registry).decode())
        assert scraped[("idsync_worker_jobs", (("status", "todo"),))] == 3
        assert scraped[("idsync_worker_jobs", (("status", "doing"),))] == 0
    finally:
        ws.close()
        database.dispose()


def test_postgresql_sums_finished_job_runs_into_the_same_buckets(db: Database) -> None:
    ws = Workspace(principal=Principal.system("test"), database_url=db.url)
    try:
        check_database_sums(ws)
    finally:
        ws.close()
