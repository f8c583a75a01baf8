"""``--metrics-port`` of the nodes that serve no HTTP of their own
(``idsync scheduler``, ``idsync worker``): a small metrics server beside them.

The options are declared here for both commands; the metrics code is
imported only by a node that serves them, so ``idsync --help`` stays quick."""

from __future__ import annotations

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
