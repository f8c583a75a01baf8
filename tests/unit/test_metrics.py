"""Metrics read from a real SQLite database after real runs, and their text
exposition as Prometheus's own parser reads it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, update

from idsync.domain.principals import Principal
from idsync.domain.results import Counts
from idsync.runtime import metrics as exported
from idsync.services import collection_runs, definitions, jobs, metrics
from idsync.services.workspace import Workspace
from idsync.store.metrics_repo import FinishedRun, MetricsRepository
from idsync.store.tables import plans, runs, utcnow
from tests.scheduler_world import World, make_world
from tests.unit.conftest import copy_migrated


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite: Path) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    copy_migrated(migrated_sqlite, tmp_path / "idsync.db")
    made = make_world(tmp_path)
    yield made
    made.ws.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and labels, as Prometheus parses it."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# ---------------------------------------------------------------- pure parts


def test_durations_fall_in_cumulative_buckets_ending_with_inf() -> None:
    d = metrics.Durations().add(0.5).add(4).add(100000)
    cumulative = dict(d.cumulative())
    assert (cumulative["1.0"], cumulative["5.0"], cumulative["21600.0"], cumulative["+Inf"]) == (1, 2, 2, 3)
    assert (d.count, d.total) == (3, 100004.5)


def test_totals_count_job_runs_changes_once_and_every_runs_duration() -> None:
    start = utcnow()
    runs = [
        FinishedRun(1, "job", Counts(created=3, updated=1, errors=2), start, start + timedelta(seconds=2), True),
        FinishedRun(2, "collection", Counts(created=3, updated=1, errors=2), start, start + timedelta(seconds=3), False),
        FinishedRun(3, "job", Counts(deleted=1), None, None, True),  # never started: no duration
    ]
    base = metrics.Totals()
    totals = base.plus(runs)
    assert totals.changes == {"created": 3, "updated": 1, "deleted": 1, "disabled": 0, "moved": 0}
    assert totals.record_errors == 2
    assert {k: (v.count, v.total) for k, v in totals.durations.items()} == {"job": (1, 2.0), "collection": (1, 3.0)}
    assert base.changes["created"] == 0  # the totals folded into are left as they were


def test_lag_quantiles_are_nearest_rank() -> None:
    lag = metrics.Lag.of([float(n) for n in range(1, 101)])
    assert (lag.count, lag.p50, lag.p95, lag.max) == (100, 50.0, 95.0, 100.0)
    assert math.isnan(metrics.Lag.of([]).p95)


# ---------------------------------------------------------------- from the database


def test_runs_changes_and_durations_are_read_from_finished_runs(world: World) -> None:
    world.collection("c", ["people"])
    before = metrics.read(world.ws)
    report = collection_runs.run_collection(world.ws, "c")
    assert report.run.state.value == "succeeded"
    after = metrics.read(world.ws, before.settled)
    assert after.runs_by_state[("collection", "succeeded")] == 1
    assert after.totals.changes["created"] - before.totals.changes["created"] == 2
    assert after.totals.durations["collection"].count == 1
    assert after.totals.durations["job"].count - before.totals.durations["job"].count == 1
    assert after.pending_requests == 0
    assert after.worker_jobs is None  # SQLite: no workers' queue
    assert after.outbox == {}


def test_settled_runs_are_summed_once_however_many_scrapes(world: World) -> None:
    world.csv_job("more", ["3,Grace,Hopper", "4,Edsger,Dijkstra"])
    jobs.run_job(world.ws, "more")
    fresh = metrics.read(world.ws)
    assert fresh.settled.through_id == 0  # all created within the last minutes: not settled yet
    later = lambda: utcnow() + metrics.SETTLE_AFTER + timedelta(minutes=1)  # noqa: E731
    first = metrics.read(world.ws, fresh.settled, clock=later)
    assert first.settled.through_id > 0
    second = metrics.read(world.ws, first.settled, clock=later)
    third = metrics.read(world.ws, second.settled, clock=later)
    assert first.totals == second.totals == third.totals
    # Summed by the database once settled, by Python before: the same figures
    # (SQLite's julianday keeps durations to the millisecond).
    assert (fresh.totals.changes, fresh.totals.record_errors) == (first.totals.changes, first.totals.record_errors)
    for kind, durations in fresh.totals.durations.items():
        settled = first.totals.durations[kind]
        assert (durations.buckets, durations.count) == (settled.buckets, settled.count)
        assert durations.total == pytest.approx(settled.total, abs=0.01)
    assert third.totals.changes["created"] == 3  # the ou, then two people


def test_the_exposition_parses_and_names_every_metric(world: World) -> None:
    world.collection("c", ["people"])
    registry = exported.registry(world.ws)
    before = samples(exported.exposition(registry).decode())
    collection_runs.run_collection(world.ws, "c")
    after = samples(exported.exposition(registry).decode())
    created = ("idsync_objects_changed_total", (("operation", "created"),))
    assert after[created] - before[created] == 2
    assert after[("idsync_runs", (("kind", "collection"), ("state", "succeeded")))] == 1
    assert after[("idsync_run_duration_seconds_count", (("kind", "collection"),))] == 1
    assert after[("idsync_database_up", ())] == 1
    assert after[("idsync_outbox_messages", (("state", "pending"),))] == 0
    assert after[("idsync_requests_pending", ())] == 0
    assert after[("idsync_record_errors_total", ())] == 0
    assert after[("idsync_scheduler_lag_occurrences", ())] == 0
    assert ("process_cpu_seconds_total", ()) in after


def test_a_database_that_cannot_be_read_is_reported_down_not_raised(world: World) -> None:
    registry = exported.registry(world.ws)
    (world.root / "idsync.db").unlink()
    (world.root / "idsync.db").mkdir()  # SQLite cannot open a folder
    world.ws.db.dispose()
    scraped = samples(exported.exposition(registry).decode())
    assert scraped[("idsync_database_up", ())] == 0
    assert not any(name.startswith("idsync_runs") for name, _ in scraped)


def write_runs(ws: Workspace) -> None:
    """Runs of known durations and counts, written directly: the database's
    sums are checked against figures worked out by hand. Run 6 was held on
    plan 1, then released by run 7 applying that plan: it carries run 7's
    counts, which are counted once."""
    start = utcnow() - timedelta(days=2)
    released = Counts(created=10, errors=1)
    rows = [
        (1, "job", "succeeded", 0.5, Counts(created=2, errors=1), None),
        (2, "job", "failed", 4.0, Counts(updated=3, moved=1), None),
        (3, "job", "succeeded", 100000.0, Counts(deleted=1, disabled=2, errors=4), None),
        (4, "collection", "succeeded", 100001.0, Counts(created=2, updated=3, deleted=1), None),  # its jobs' sums
        (5, "job", "running", None, Counts(created=50), None),  # open: not counted
        (6, "job", "succeeded", 1.0, released, 1),
        (7, "job", "succeeded", 2.0, released, 1),
        (8, "job", "held", 1.0, Counts(read=5, errors=2), 2),  # wrote nothing; its plan's errors go to its release
    ]
    with ws.db.session() as session:
        session.execute(insert(plans), [
            {"id": n, "job_name": "j", "state": "ready", "created_by": "t", "created_at": start,
             "counts": Counts().to_dict(), "change_count": 0} for n in (1, 2)
        ])
        session.execute(insert(runs), [
            {"id": run_id, "kind": kind, "job_name": "j", "state": state, "trigger": "manual", "requested_by": "t",
             "created_at": start, "started_at": start, "plan_id": plan_id,
             "finished_at": None if seconds is None else start + timedelta(seconds=seconds),
             "counts": counts.to_dict()}
            for run_id, kind, state, seconds, counts, plan_id in rows
        ])
        session.execute(update(plans).where(plans.c.id == 1).values(state="applied", applied_run_id=7))


def check_database_sums(ws: Workspace) -> None:
    write_runs(ws)
    with ws.db.session() as session:
        repo = MetricsRepository(session)
        changes, errors = repo.sums(0, 10**9, metrics.CHANGE_OPERATIONS)
        buckets = repo.duration_buckets(0, 10**9, metrics.DURATION_BUCKETS)
        one_by_one = metrics.Totals().plus(repo.finished_runs(0))
    assert changes == {"created": 12, "updated": 3, "deleted": 1, "disabled": 2, "moved": 1}
    assert errors == 6
    assert (one_by_one.changes, one_by_one.record_errors) == (changes, errors)
    job_counts, job_total = buckets["job"]
    assert (job_counts[0], job_counts[1], job_counts[-1], sum(job_counts)) == (3, 2, 1, 6)  # ≤ 1 s, ≤ 5 s, > 6 h
    assert job_total == pytest.approx(100008.5, abs=0.01)
    assert buckets["collection"][0][-1] == 1
    assert one_by_one.durations["job"].buckets == tuple(job_counts)


def test_the_database_sums_finished_job_runs_into_buckets(tmp_path: Path, migrated_sqlite: Path) -> None:
    ws = Workspace(principal=Principal.system("test"), database_url=copy_migrated(migrated_sqlite, tmp_path / "m.db"))
    try:
        check_database_sums(ws)
    finally:
        ws.close()


def test_every_metric_is_documented_in_the_deployment_guide() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "deployment.md").read_text(encoding="utf-8")
    snapshot = metrics.Snapshot(
        runs_by_state={("job", "running"): 1}, totals=metrics.Totals(), outbox={}, pending_requests=0,
        worker_jobs={"todo": 0, "doing": 0}, lag=metrics.Lag.of([1.0]), settled=metrics.Settled(),
    )
    names = ["idsync_database_up"] + [
        f.name + ("_total" if f.type == "counter" else "") for f in exported.families(snapshot)
    ]
    assert len(names) == 10
    assert [name for name in names if f"| `{name}` |" not in guide] == []


def test_the_metrics_token_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    from idsync import settings

    monkeypatch.setenv("IDSYNC_METRICS_TOKEN", "scrape-me-7731")
    shown = {s.name: s.shown() for s in settings.SETTINGS}
    assert shown["metrics_token"] == "(set)"


def test_a_held_job_released_later_is_counted_once(world: World) -> None:
    world.csv_job("leavers", ["11,Ada,Byron", "12,Alan,Mathison", "13,Kurt,Goedel"])
    world.define("job", {**definitions.public_body(definitions.load(world.ws, "job", "leavers").definition),
                         "limits": {"max_creates": 1}})
    world.collection("nightly", ["leavers"])
    before = metrics.read(world.ws)
    report = collection_runs.run_collection(world.ws, "nightly")
    assert report.run.state.value == "held"
    held = metrics.read(world.ws, before.settled)
    assert held.totals.changes["created"] == before.totals.changes["created"]  # held: nothing written
    [job] = report.jobs
    assert job.plan_id is not None
    release = jobs.run_job(world.ws, "leavers", plan_id=job.plan_id)
    assert release.counts.created == 3
    later = lambda: utcnow() + metrics.SETTLE_AFTER + timedelta(minutes=1)  # noqa: E731
    for settled in (False, True):  # summed one by one, then by the database: the same
        after = metrics.read(world.ws, before.settled, clock=later if settled else utcnow)
        assert after.totals.changes["created"] - before.totals.changes["created"] == 3
        assert after.runs_by_state[("job", "succeeded")] >= 2  # the release, and the held run it settled
