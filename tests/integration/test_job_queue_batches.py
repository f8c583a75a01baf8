"""Deferring a scheduler's batch of runs to the workers in one round trip,
on a real PostgreSQL with procrastinate's schema: one job per run, under the
run's own queueing lock, and a batch holding a run that waits already falls
back to one job at a time without doubling it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from idsync.runtime.worker import QueueExecutor
from idsync.services.collection_runs import Runtime
from tests.integration.test_store_postgres import server
from tests.integration.test_workers_faults import world
from tests.scheduler_world import World

__all__ = ["server", "world"]

pytestmark = pytest.mark.postgres




def waiting(world: World) -> list[tuple[int, int, str, str]]:
    with world.ws.db.session() as session:
        rows = session.execute(text(
            "SELECT (args->>'run_id')::int, (args->>'fence')::int, queueing_lock, queue_name "
            "FROM procrastinate_jobs WHERE status = 'todo' ORDER BY id"
        )).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_batch_of_runs_is_deferred_as_one_job_each(world: World) -> None:
    executor = QueueExecutor(world.ws, Runtime(node="node-a"))
    try:
        executor.submit_many([(101, 1), (102, 1), (103, 2)])
    finally:
        executor.shutdown(5)
    assert waiting(world) == [
        (101, 1, "run-101", "runs"), (102, 1, "run-102", "runs"), (103, 2, "run-103", "runs"),
    ]


def test_a_batch_with_a_run_waiting_already_defers_the_others_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    executor = QueueExecutor(world.ws, Runtime(node="node-a"))
    try:
        executor.submit_many([(201, 1), (202, 1)])
        executor.submit_many([(202, 1), (203, 4)])
    finally:
        executor.shutdown(5)
    assert waiting(world) == [(201, 1, "run-201", "runs"), (202, 1, "run-202", "runs"), (203, 4, "run-203", "runs")]
    assert "run 202 not handed to the workers: run 202 waits in the job queue already" in caplog.text
