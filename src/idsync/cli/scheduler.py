"""``idsync scheduler``: run a scheduler node in the foreground.

It ticks every ``--tick`` seconds until SIGTERM or SIGINT, then stops
ticking, asks the runs it executes to stop at their next batch, waits up to
``--shutdown-timeout`` seconds, and marks what is still running
*terminated*: it never leaves a run marked running behind it.
"""

from __future__ import annotations

from datetime import timedelta

import typer

from idsync.cli.common import workspace
from idsync.cli.nodes import HOST_OPTION as METRICS_HOST_OPTION
from idsync.cli.nodes import PORT_OPTION as METRICS_PORT_OPTION
from idsync.cli.output import err_console

DEFAULT_LEASE_SECONDS = 60.0
"""The lease of a run a scheduler executes (as ``idsync.services.collection_runs.DEFAULT_LEASE``)."""


def scheduler(
    once: bool = typer.Option(False, "--once", help="Start, fire what is due, wait for those runs, then exit."),
    tick: float = typer.Option(30.0, "--tick", min=0.05, help="Seconds between two looks at the schedules."),
    lease: float = typer.Option(
        DEFAULT_LEASE_SECONDS, "--lease", min=0.2,
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
    metrics_port: int | None = METRICS_PORT_OPTION,
    metrics_host: str = METRICS_HOST_OPTION,
    workers: str | None = typer.Option(
        None, "--workers", metavar="in-process|external",
        help="Where runs execute: in this process, or deferred to `idsync worker` processes "
        "(PostgreSQL; default: setting IDSYNC_WORKERS, else in-process).",
    ),
) -> None:
    """Run the scheduler: start the collections of every schedule when due,
    exactly once, until stopped with SIGTERM or Ctrl-C."""
    from idsync.cli import nodes
    from idsync.runtime.node import (
        SchedulerNode,
        log_line,
        run_scheduler,
        workers_mode,
    )

    def say(message: str) -> None:
        if not quiet:
            err_console.print(log_line(message), markup=False, soft_wrap=True)

    ws = workspace()
    options = SchedulerNode(
        once=once, tick=tick, lease=timedelta(seconds=lease), node=node, shutdown_timeout=shutdown_timeout,
        outbox=not no_outbox, workers=workers_mode(workers),
    )
    nodes.run_node(ws, metrics_port, metrics_host, say, lambda stop: run_scheduler(ws, options, stop, say))
