"""A scheduler killed (SIGKILL) between recording an occurrence and
starting its run, as a real process on one SQLite file: the occurrence is
never lost (recorded without a run) nor started twice.

The process kills itself at a chosen point: the code it runs is the real
``idsync scheduler``, with the function at that point replaced by a
SIGKILL of the process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from idsync.domain.results import RunState
from idsync.store.scheduling_repo import NODE_LOST, SchedulingRepository
from tests.integration.test_scheduler_processes import collection_runs, due_soon, tick_once
from tests.scheduler_world import World

DIE_AT = {
    # Between the occurrence's row and its first run's row.
    "run row": "from idsync.store.collections_repo import CollectionRunRepository as target\nname = 'create'",
    # After the transaction, before the claimed run is handed to a thread.
    "hand over": "from idsync.runtime.executor import ThreadExecutor as target\nname = 'submit'",
}
"""Where a scheduler given ``die_at`` kills itself."""

DYING = """
import os, signal, sys
{where}
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
setattr(target, name, die)
from idsync.cli.app import main
sys.argv[0] = "idsync"
main()
"""


def dying_scheduler(world: World, die_at: str, *args: str) -> subprocess.Popen[str]:
    """``idsync scheduler ARGS`` in a process that SIGKILLs itself on reaching *die_at*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_")}
    env |= {"IDSYNC_HOME": str(world.root / "home"), "IDSYNC_DATABASE_URL": world.ws.database_url or ""}
    return subprocess.Popen(
        [sys.executable, "-c", DYING.format(where=DIE_AT[die_at]), "scheduler", "--tick", "0.2", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_a_scheduler_killed_between_an_occurrence_and_its_run_leaves_it_to_the_next_one(world: World) -> None:
    """Killed after writing the occurrence, before its run: nothing of it was
    committed, so the next scheduler fires it (it is within its grace), once."""
    world.collection("c", ["people"], schedule="soon")
    due_soon(world)
    doomed = dying_scheduler(world, "run row", "--once", "--node", "doomed")
    assert doomed.wait(timeout=60) == -signal.SIGKILL
    with world.ws.db.session() as session:
        assert SchedulingRepository(session).occurrences("soon") == []
    assert collection_runs(world) == []

    tick_once(world, "survivor")
    tick_once(world, "another")
    with world.ws.db.session() as session:
        [occurrence] = SchedulingRepository(session).occurrences("soon")
    [run] = collection_runs(world)
    assert (run.state, run.trigger, run.occurrence_id, run.node) == (
        RunState.SUCCEEDED, "schedule", occurrence.id, "survivor"
    )


def test_a_scheduler_killed_after_starting_an_occurrence_leaves_its_run_recorded_failed(world: World) -> None:
    """Killed once the occurrence and its claimed run are committed, before
    the run executes: the run is there, and once its lease runs out it is
    marked failed; the occurrence is neither lost nor started again."""
    world.collection("c", ["people"], schedule="soon")
    due_soon(world)
    doomed = dying_scheduler(world, "hand over", "--once", "--lease", "1", "--node", "doomed")
    assert doomed.wait(timeout=60) == -signal.SIGKILL
    [run] = collection_runs(world)
    assert (run.state, run.node) == (RunState.RUNNING, "doomed")
    time.sleep(1.2)  # the lease runs out
    tick_once(world, "survivor")
    tick_once(world, "another")
    with world.ws.db.session() as session:
        [occurrence] = SchedulingRepository(session).occurrences("soon")
    [run] = collection_runs(world)
    assert (run.state, run.error, run.occurrence_id) == (RunState.FAILED, NODE_LOST, occurrence.id)
