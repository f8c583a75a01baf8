"""Nothing stays stale after a kill, even with no scheduler running.

A real ``idsync job run`` or ``idsync job preview`` is killed with SIGKILL
while it reads a gated source; once its one-second lease has run out, the
next listing of runs or plans reports it failed, and its plan is no longer
*computing*.
"""

from __future__ import annotations

import signal
import time

from idsync.domain.results import RunState
from idsync.services import history, jobs
from idsync.store.plans_repo import PREVIEW_LOST, PlanRepository
from idsync.store.scheduling_repo import NODE_LOST
from tests.integration.test_scheduler_processes import idsync, standalone_runs
from tests.scheduler_world import Gate, World


def killed_while_reading(world: World, *command: str, times: int = 1) -> Gate:
    """The gated job ``slow``, and a real ``idsync COMMAND`` (with a one-second
    lease) SIGKILLed while it reads its source; the gate stays shut."""
    gate = world.gated_job("slow", ["7,Edsger,Dijkstra"])
    gate.serve(times=times)
    process = idsync(world, *command, run_lease_seconds="1")
    try:
        gate.wait_reading(30)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    return gate


def plans_of(world: World, job: str) -> list[tuple[str, str | None]]:
    with world.ws.db.session() as session:
        return [(p.state, p.error) for p in PlanRepository(session).list(job_name=job)]


def test_a_killed_job_run_is_listed_failed_without_a_scheduler(world: World) -> None:
    gate = killed_while_reading(world, "job", "run", "slow")
    (run,) = standalone_runs(world)
    assert run.state is RunState.RUNNING  # nobody has looked yet
    assert plans_of(world, "slow") == [("computing", None)]
    time.sleep(1.2)  # the lease runs out; no scheduler runs
    (listed,) = history.list_runs(world.ws, job="slow")
    assert (listed.id, listed.state, listed.error) == (run.id, RunState.FAILED, NODE_LOST)
    assert "lower bound" in listed.error  # its counts may understate what it wrote
    # The plan it was computing (a run without limits plans as it writes) is failed too.
    assert plans_of(world, "slow") == [("failed", f"run {run.id} failed: {NODE_LOST}")]
    report = history.run_report(world.ws, run.id)
    assert report.log[-1].message == NODE_LOST
    gate.open()


def test_a_killed_preview_is_listed_failed_without_a_scheduler(world: World) -> None:
    gate = killed_while_reading(world, "job", "preview", "slow", times=2)
    ((state, _),) = plans_of(world, "slow")
    assert state == "computing"
    time.sleep(1.2)  # the lease runs out
    (listed,) = history.list_plans(world.ws, job="slow")
    assert (listed.state, listed.error) == ("failed", PREVIEW_LOST)
    gate.open()


def test_a_preview_left_computing_is_failed_when_another_preview_starts(world: World) -> None:
    gate = killed_while_reading(world, "job", "preview", "slow", times=2)
    time.sleep(1.2)
    gate.open()
    result = jobs.preview_job(world.ws, "slow")
    assert result.plan.state == "ready"
    assert sorted(plans_of(world, "slow")) == [("failed", PREVIEW_LOST), ("ready", None)]


def test_a_preview_longer_than_its_lease_keeps_its_plan(world: World) -> None:
    """The heartbeat renews the preview's lease: a listing meanwhile leaves it computing."""
    gate = world.gated_job("slow", ["7,Edsger,Dijkstra", "8,Barbara,Liskov"])
    gate.serve()
    process = idsync(world, "job", "preview", "slow", run_lease_seconds="1")
    gate.wait_reading(30)
    time.sleep(1.5)  # longer than the lease: only renewals keep it
    assert [p.state for p in history.list_plans(world.ws, job="slow")] == ["computing"]
    gate.open()
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    (plan,) = history.list_plans(world.ws, job="slow")
    assert (plan.state, plan.change_count) == ("ready", 2)
