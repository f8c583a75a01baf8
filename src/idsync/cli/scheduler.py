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
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", min=0, max=65535,
        help="Serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port, printed).",
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1", "--metrics-host", help="Address the metrics listen on (default loopback; 0.0.0.0: every interface)."
    ),
) -> None:
    """Run the scheduler: start the collections of every schedule when due,
    exactly once, until stopped with SIGTERM or Ctrl-C."""
    from idsync.cli import metrics_port as metrics
    from idsync.runtime.node import (
        SchedulerNode,
        log_line,
        one_log_format,
        run_scheduler,
        stop_on_signals,
    )

    def say(message: str) -> None:
        if not quiet:
            err_console.print(log_line(message), markup=False, soft_wrap=True)

    ws = workspace()
    options = SchedulerNode(
        once=once, tick=tick, lease=timedelta(seconds=lease), node=node, shutdown_timeout=shutdown_timeout,
        outbox=not no_outbox,
    )
    served = metrics.start(ws, metrics_port, metrics_host, say)
    try:
        with stop_on_signals() as stop, one_log_format():
            run_scheduler(ws, options, stop, say)
    finally:
        if served is not None:
            served.stop()
        ws.close()
