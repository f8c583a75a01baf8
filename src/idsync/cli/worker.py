"""``idsync worker``: execute the runs schedulers defer to workers.

Schedulers (and ``idsync serve``) started with ``--workers=external`` claim
each run and defer it to the job queue in idsync's PostgreSQL database;
workers, on any machine reaching that database, execute them. SIGTERM or
Ctrl-C stops taking jobs, asks the runs executing here to stop at their
next batch, waits up to ``--shutdown-timeout`` seconds, and marks what is
still running *terminated*: it never leaves a run marked running.
"""

from __future__ import annotations

from datetime import timedelta

import typer

from idsync.cli.common import workspace
from idsync.cli.nodes import HOST_OPTION, PORT_OPTION
from idsync.cli.output import err_console

DEFAULT_LEASE_SECONDS = 60.0
"""The lease of a run a worker executes (as ``idsync.services.collection_runs.DEFAULT_LEASE``)."""


def worker(
    concurrency: int | None = typer.Option(
        None, "--concurrency", "-c", min=1, help="Runs executed at once (default: setting IDSYNC_WORKER_CONCURRENCY, 4)."
    ),
    queue: list[str] = typer.Option(
        ["runs"], "--queue", "-Q", metavar="QUEUE", help="Job queue to take runs from (repeat for several; schedulers defer to `runs`)."
    ),
    lease: float = typer.Option(
        DEFAULT_LEASE_SECONDS, "--lease", min=0.2,
        help="Seconds a run stays claimed without a heartbeat before a scheduler marks it failed (node lost).",
    ),
    node: str | None = typer.Option(None, "--node", help="Name of this worker in runs (default HOST:PID)."),
    shutdown_timeout: float = typer.Option(
        30.0, "--shutdown-timeout", min=0, help="Seconds to let running runs stop by themselves on shutdown."
    ),
    once: bool = typer.Option(False, "--once", help="Execute the runs waiting now, then exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print what the worker does."),
    metrics_port: int | None = PORT_OPTION,
    metrics_host: str = HOST_OPTION,
) -> None:
    """Execute the runs schedulers defer to workers (--workers=external; PostgreSQL),
    until stopped with SIGTERM or Ctrl-C."""
    from idsync import settings
    from idsync.cli import nodes
    from idsync.runtime.node import log_line, run_worker
    from idsync.runtime.worker import WorkerNode

    def say(message: str) -> None:
        if not quiet:
            err_console.print(log_line(message), markup=False, soft_wrap=True)

    ws = workspace()
    options = WorkerNode(
        concurrency=concurrency or max(1, settings.get_int("worker_concurrency")),
        queues=tuple(queue), lease=timedelta(seconds=lease), node=node, shutdown_timeout=shutdown_timeout,
        once=once,
    )
    nodes.run_node(ws, metrics_port, metrics_host, say, lambda stop: run_worker(ws, options, stop, say))
