"""``--metrics-port`` of the nodes that serve no HTTP of their own
(``idsync scheduler``, ``idsync worker``): a small metrics server beside them."""

from __future__ import annotations

from collections.abc import Callable

import typer

from idsync.runtime.metrics import MetricsServer, start_metrics_server
from idsync.services.workspace import Workspace

PORT_HELP = "Serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port, printed)."
HOST_HELP = "Address the metrics listen on (default loopback; 0.0.0.0: every interface)."


def start(ws: Workspace, port: int | None, host: str, say: Callable[[str], None]) -> MetricsServer | None:
    """The metrics server of this node, started when *port* is given (None: none)."""
    if port is None:
        return None
    try:
        served = start_metrics_server(ws, port, host)
    except OSError as exc:
        raise typer.BadParameter(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    say(f"metrics served at {served.address}")
    return served
