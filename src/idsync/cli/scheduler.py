"""``idsync scheduler``: run the scheduler in the foreground.

It ticks every ``--tick`` seconds until SIGTERM or SIGINT, then stops
ticking, asks the runs it executes to stop at their next batch, waits up to
``--shutdown-timeout`` seconds, and marks what is still running
*terminated*: it never leaves a run marked running behind it.
"""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from types import FrameType

import typer

from idsync.cli.common import workspace
from idsync.cli.output import err_console
from idsync.runtime import sender as outbox
from idsync.runtime.executor import ThreadExecutor
from idsync.runtime.scheduler import Scheduler
from idsync.services.collection_runs import DEFAULT_LEASE, Runtime
from idsync.store.leases import default_node
from idsync.store.tables import utcnow


def scheduler(
    once: bool = typer.Option(False, "--once", help="Start, fire what is due, wait for those runs, then exit."),
    tick: float = typer.Option(30.0, "--tick", min=0.05, help="Seconds between two looks at the schedules."),
    lease: float = typer.Option(
        DEFAULT_LEASE.total_seconds(), "--lease", min=0.2,
        help="Seconds a run stays claimed without a heartbeat before another scheduler marks it failed.",
    ),
    node: str | None = typer.Option(None, "--node", help="Name of this scheduler in runs (default HOST:PID)."),
    shutdown_timeout: float = typer.Option(
        30.0, "--shutdown-timeout", min=0, help="Seconds to let running runs stop by themselves on shutdown."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print what the scheduler does."),
    no_outbox: bool = typer.Option(
        False, "--no-outbox", help="Do not deliver notifications here (run `idsync outbox send` elsewhere)."
    ),
) -> None:
    """Run the scheduler: start the collections of every schedule when due,
    exactly once, until stopped with SIGTERM or Ctrl-C."""
    ws = workspace()
    runtime = Runtime(node=node or default_node(), lease=timedelta(seconds=lease))
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    def say(message: str) -> None:
        if not quiet:
            err_console.print(f"{utcnow():%Y-%m-%d %H:%M:%S} {message}", markup=False, soft_wrap=True)

    executor = ThreadExecutor(ws, runtime, on_finished=lambda row: say(f"run {row.id} of collection {row.collection_name!r} {row.state.value}"))
    engine = Scheduler(ws, executor, runtime, on_event=say)
    say(f"scheduler {runtime.node} started (tick {tick:g}s, lease {lease:g}s)")
    # Notifications go out from a thread of their own: a slow mail server never holds up a tick.
    sender_stop = threading.Event()
    sender = None if once or no_outbox else outbox.start_thread(ws, sender_stop)
    try:
        if once:
            engine.start()
            while executor.active() and not stop.wait(0.1):
                pass
        else:
            engine.serve(stop, tick)
    finally:
        terminated = engine.shutdown(shutdown_timeout if stop.is_set() or not once else 0)
        for run_id in terminated:
            say(f"run {run_id} marked terminated")
        sender_stop.set()
        if sender is not None:
            sender.join(timeout=30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        say(f"scheduler {runtime.node} stopped")
        ws.close()
