"""The foreground nodes that serve no HTTP of their own (``idsync scheduler``,
``idsync worker``): their ``--metrics-port`` options, a small metrics server
beside them, and how they run until SIGTERM or Ctrl-C.

The options are declared here for both commands; the metrics code is
imported only by a node that serves them, so ``idsync --help`` stays quick."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from idsync.services.workspace import Workspace

if TYPE_CHECKING:
    from idsync.runtime.metrics import MetricsServer

PORT_HELP = "Serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port, printed)."
HOST_HELP = "Address the metrics listen on (default loopback; 0.0.0.0: every interface)."
PORT_OPTION = typer.Option(None, "--metrics-port", min=0, max=65535, help=PORT_HELP)
HOST_OPTION = typer.Option("127.0.0.1", "--metrics-host", help=HOST_HELP)


def start(ws: Workspace, port: int | None, host: str, say: Callable[[str], None]) -> MetricsServer | None:
    """The metrics server of this node, started when *port* is given (None: none)."""
    if port is None:
        return None
    from idsync.runtime.metrics import (
        start_metrics_server,  # prometheus_client only for a node that serves metrics
    )

    try:
        served = start_metrics_server(ws, port, host)
    except OSError as exc:
        raise typer.BadParameter(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    say(f"metrics served at {served.address}")
    return served


def run_node(
    ws: Workspace, port: int | None, host: str, say: Callable[[str], None],
    body: Callable[[threading.Event], None],
) -> None:
    """Run a foreground node (*body*, until the event SIGTERM or Ctrl-C sets)
    in the nodes' log format, with its metrics server when *port* is given;
    on the way out, stop the metrics server and close the workspace."""
    from idsync.runtime.node import one_log_format, stop_on_signals

    served = start(ws, port, host, say)
    try:
        with stop_on_signals() as stop, one_log_format():
            body(stop)
    finally:
        if served is not None:
            served.stop()
        ws.close()
