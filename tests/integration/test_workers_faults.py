"""Schedulers deferring runs to workers, as real processes on PostgreSQL, and
what happens when one of them dies, stops or loses the database.

Leases are 1 s, ticks 0.2 s. A gated source (a FIFO the test feeds) holds a
run in progress for as long as a test needs. Each test runs on a fresh
database that ``idsync db upgrade`` migrated and gave the job queue.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from idsync.domain.results import RunState
from idsync.store.outbox_repo import OutboxRepository
from idsync.store.runs_repo import LogLine, RunRepository
from idsync.store.scheduling_repo import NODE_LOST, SchedulingRepository
from tests.integration.test_store_postgres import Server, server
from tests.scheduler_world import Gate, World, now_utc, wall
from tests.servers.slapd import SlapdServer, write_count
from tests.workers import (
    collection_runs,
    cut_connections,
    job_runs,
    postgres_world,
    queue_states,
    running_on,
    scheduler,
    stop,
    upgrade,
    wait_until,
    worker,
)

__all__ = ["server"]

pytestmark = pytest.mark.postgres

NOTIFY = {"enabled": True, "recipients": ["ops@example.org"], "triggers": ["failed"]}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    url = server.create()
    made = postgres_world(tmp_path, url)
    yield made
    made.ws.close()
    server.drop(url)


def once_more(world: World, name: str = "twice", within: float = 1.0) -> None:
    """Give schedule *name* one more one-time trigger, due *within* seconds from now."""
    from idsync.services import schedules

    _id, schedule = schedules.load_schedule(world.ws, name)
    triggers = [trigger.model_dump(mode="json", exclude_none=True) for trigger in schedule.triggers]
    due = now_utc() + timedelta(seconds=within)
    world.schedule(name, [*triggers, {"kind": "once", "start": wall(due)}])


def gated_ldap_job(world: World, slapd: SlapdServer, rows: list[str]) -> tuple[Gate, str]:
    """A job ``slow`` writing people from a gated source into a fresh container
    of the real slapd (store ``ldap``); the gate and the container's DN."""
    container = slapd.new_container()
    world.define("store", {
        "name": "ldap", "kind": "ldap", "url": slapd.url, "bind_dn": slapd.root_dn, "bind_password": slapd.root_pw,
        "notification_server": {"host": "127.0.0.1", "port": 9, "tls": "none", "sender": "idsync@example.org"},
    })
    gate = Gate(world.root / "slow.fifo", rows)
    world.define("source", {"name": "slow", "kind": "csv", "path": str(gate.path), "header": False,
                            "fields": ["id", "first", "last"]})
    world.define("job", {
        "name": "slow", "source": "slow", "destination": {"store": "ldap", "container": container},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "cn", "join": {"fields": ["first", "last"]}},
            {"attribute": "sn", "from": "last"},
        ],
    })
    return gate, container


def in_slapd(slapd: SlapdServer, container: str) -> list[str]:
    """The uids under *container* in slapd."""
    import ldap

    conn = slapd.connect()
    try:
        found = conn.search_s(container, ldap.SCOPE_ONELEVEL, "(uid=*)", ["uid"])
    finally:
        conn.unbind_s()
    return sorted(attrs["uid"][0].decode() for _dn, attrs in found)


def entries(world: World) -> list[str]:
    """The uids the embedded directory holds under ou=People."""
    from idsync.services import directory

    found = directory.search(world.ws, "dir", filterstr="(uid=*)", attributes=["uid"])
    return sorted(entry.dn.split(",", 1)[0].removeprefix("uid=") for entry in found)


def test_db_upgrade_installs_the_job_queue_once(world: World) -> None:
    """The fixture's upgrade installed it; the next one finds it up to date."""
    assert "job queue (procrastinate " in upgrade(world) and "already up to date" in upgrade(world)


@pytest.mark.slapd
def test_a_worker_killed_mid_run_has_its_run_failed_and_the_next_one_succeeds(
    world: World, slapd: SlapdServer
) -> None:
    """SIGKILL mid-run: failed (node lost) within the lease and a tick, its
    *failed* notification queued; the next occurrence runs on another worker
    and the directory converges, written once (slapd's write counter). The
    killed worker's job, left *doing*, is marked failed by the other worker
    once the killed one has missed three leases of heartbeats."""
    gate, container = gated_ldap_job(world, slapd, ["7,Edsger,Dijkstra"])
    writes = write_count(slapd)
    world.collection("c", ["slow"], schedule="twice", notifications=NOTIFY)
    gate.serve(times=2)
    world.schedule("twice", [{"kind": "once", "start": wall(now_utc() + timedelta(seconds=2))}])
    chief = scheduler(world, "chief")
    doomed = worker(world, "doomed")
    spare = None
    try:
        gate.wait_reading(30)
        wait_until(running_on(world, "doomed"), what="the run to be taken over by the worker")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        killed_at = time.monotonic()
        first = collection_runs(world)[0]
        wait_until(lambda: collection_runs(world)[0].state is RunState.FAILED, timeout=10, what="node lost")
        assert time.monotonic() - killed_at < 3  # the lease (1 s) and a tick or two
        first = collection_runs(world)[0]
        assert (first.error, first.node) == (NODE_LOST, "doomed")
        with world.ws.db.session() as session:
            [message] = OutboxRepository(session).list(run_id=first.id)
        assert (message.trigger, message.recipient) == ("failed", "ops@example.org")
        gate.open()  # the killed reader is gone: the rows go to the next run
        spare = worker(world, "spare")
        once_more(world)
        wait_until(lambda: len(collection_runs(world)) == 2 and collection_runs(world)[1].state.finished,
                   timeout=20, what="the second run")
        wait_until(lambda: queue_states(world, first.id) == ["failed"], timeout=20,
                   what="the killed worker's job to be marked failed")
    finally:
        outputs = [stop(p) for p in (chief, spare, doomed) if p is not None]
    runs = collection_runs(world)
    assert [(r.state, r.node) for r in runs] == [(RunState.FAILED, "doomed"), (RunState.SUCCEEDED, "spare")], outputs
    assert runs[1].counts.created == 1 and in_slapd(slapd, container) == ["7"]
    assert write_count(slapd) - writes == 1
    with world.ws.db.session() as session:
        assert len(SchedulingRepository(session).occurrences("twice")) == 2


@pytest.mark.slapd
def test_a_worker_stopped_past_its_lease_is_fenced_off_when_it_comes_back(world: World, slapd: SlapdServer) -> None:
    """SIGSTOP (a worker cut off from the database) past its 1 s lease: the run
    is marked failed; once continued, the stale worker's result is refused and
    it writes nothing to the directory; the next run (the same worker, back
    in service) applies the change, once: slapd counts one write in all."""
    gate, container = gated_ldap_job(world, slapd, ["7,Edsger,Dijkstra"])
    writes = write_count(slapd)
    world.collection("c", ["slow"], schedule="twice")
    gate.serve(times=2)
    world.schedule("twice", [{"kind": "once", "start": wall(now_utc() + timedelta(seconds=2))}])
    chief = scheduler(world, "chief")
    stale = worker(world, "stale")
    try:
        gate.wait_reading(30)
        wait_until(running_on(world, "stale"), what="the run to be taken over by the worker")
        stale.send_signal(signal.SIGSTOP)
        wait_until(lambda: collection_runs(world)[0].state is RunState.FAILED, timeout=10, what="node lost")
        stale.send_signal(signal.SIGCONT)
        time.sleep(1.0)  # its heartbeat wakes up and finds the lease taken
        gate.open()  # the stale worker now reads its rows
        first = collection_runs(world)[0].id
        wait_until(lambda: any("no longer held" in line.message or "lost the run's lease" in line.message
                               for line in _logs(world, first)), timeout=15, what="the stale worker to give up")
        once_more(world)
        wait_until(lambda: len(collection_runs(world)) == 2 and collection_runs(world)[1].state.finished,
                   timeout=20, what="the second run")
    finally:
        outputs = [stop(p) for p in (chief, stale)]
    runs = collection_runs(world)
    assert [(r.state, r.error, r.node) for r in runs] == [
        (RunState.FAILED, NODE_LOST, "stale"), (RunState.SUCCEEDED, None, "stale")
    ], outputs
    # The stale worker applied nothing: the change was still to make for the next run.
    assert runs[1].counts.created == 1 and in_slapd(slapd, container) == ["7"]
    assert write_count(slapd) - writes == 1
    assert [j.state for j in job_runs(world, runs[0].id)] == [RunState.FAILED]


def test_connections_cut_mid_run_and_every_node_reconnects(world: World) -> None:
    """pg_terminate_backend of every connection of the worker and of the
    scheduler while a run is in progress: the run finishes (the outage is
    shorter than the lease; each step of its bookkeeping is tried again), and
    both processes go on by themselves: the next occurrence runs normally."""
    gate = world.gated_job("slow", ["7,Edsger,Dijkstra"])
    world.collection("c", ["slow"], schedule="twice")
    gate.serve(times=2)
    world.schedule("twice", [{"kind": "once", "start": wall(now_utc() + timedelta(seconds=2))}])
    chief = scheduler(world, "chief", lease="3")
    chief_name = "chief"
    only = worker(world, "only", lease="3")
    try:
        gate.wait_reading(30)
        wait_until(running_on(world, "only"), what="the run to be taken over by the worker")
        url = world.ws.database_url or ""
        assert cut_connections(url, "only") >= 2  # its pool and its listener at least
        cut_connections(url, chief_name)
        gate.open()
        wait_until(lambda: collection_runs(world)[0].state.finished, timeout=20, what="the first run")
        once_more(world)
        wait_until(lambda: len(collection_runs(world)) == 2 and collection_runs(world)[1].state.finished,
                   timeout=30, what="the second run")
    finally:
        outputs = [stop(p) for p in (chief, only)]
    runs = collection_runs(world)
    assert [(r.state, r.node) for r in runs] == [(RunState.SUCCEEDED, "only"), (RunState.SUCCEEDED, "only")], outputs
    assert [r.counts.created for r in runs] == [1, 0] and entries(world) == ["7"]
    assert all("Traceback" not in out for out in outputs), outputs


def _logs(world: World, run_id: int) -> list[LogLine]:
    with world.ws.db.session() as session:
        return RunRepository(session).logs(run_id)


def test_sigterm_stops_a_workers_run_at_its_next_batch_and_leaves_nothing_running(world: World) -> None:
    rows = [f"{n},First{n},Last{n}" for n in range(1000, 3000)]
    gate = world.gated_job("slow", rows, delay=0.002)
    world.collection("c", ["slow"], schedule="twice")
    gate.serve()
    world.schedule("twice", [{"kind": "once", "start": wall(now_utc() + timedelta(seconds=2))}])
    chief = scheduler(world, "chief")
    leaving = worker(world, "leaving", batch_size="20")
    try:
        gate.wait_reading(30)
        gate.open()
        wait_until(lambda: bool(collection_runs(world)) and sum(
            j.counts.created for j in job_runs(world, collection_runs(world)[0].id)) >= 500, what="a first commit")
        leaving.send_signal(signal.SIGTERM)
        assert leaving.wait(timeout=30) == 0
        said = leaving.stderr.read() if leaving.stderr else ""
    finally:
        outputs = [stop(p) for p in (chief, leaving)]
    assert "Traceback" not in said and "worker leaving stopped" in said, outputs
    [run] = collection_runs(world)
    assert (run.state, run.error, run.node) == (RunState.TERMINATED, "terminated: the worker was shut down", "leaving")
    [job] = job_runs(world, run.id)
    assert job.state is RunState.TERMINATED and 0 < job.counts.created < len(rows)
    with world.ws.db.session() as session:
        assert RunRepository(session).list(state=RunState.RUNNING) == []


def test_a_worker_serves_the_deployments_metrics_as_its_runs_happen(world: World) -> None:
    from tests.integration.test_metrics_postgres import CREATED, free_port, scrape

    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    working = worker(world, "w1", "--metrics-port", str(port))
    try:
        before = scrape(url)
        assert before.get(("idsync_worker_jobs", (("status", "todo"),)), 0) == 0
        world.schedule("soon", [{"kind": "once", "start": wall(now_utc() + timedelta(seconds=1))}])
        world.collection("c", ["people"], schedule="soon")
        with_scheduler = scheduler(world, "s1", "--workers", "external")
        try:
            wait_until(lambda: [r.state for r in collection_runs(world)] == [RunState.SUCCEEDED], timeout=60)
        finally:
            print(stop(with_scheduler))  # shown when the test fails
        after = scrape(url)
    finally:
        said = stop(working)
        print(said)
    assert f"metrics served at {url}" in said
    assert after[CREATED] - before[CREATED] == 2  # the two people, executed by this worker
    assert collection_runs(world)[0].node == "w1"
