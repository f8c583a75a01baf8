"""Prometheus metrics of a node: ``/metrics`` of ``idsync serve``, and a
small HTTP server for the nodes that serve nothing else (``idsync
scheduler --metrics-port``, ``idsync worker``).

The figures come from the database at scrape time
(:func:`idsync.services.metrics.read`), so any node reports the whole
deployment and none of them counts in memory what it would lose on restart.
The process's own figures (CPU, memory, open files) are added per node.
Names, units and the meaning of each are in docs/deployment.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from idsync.services import metrics
from idsync.services.workspace import Workspace
from idsync.settings import mask_url_password

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The media type of :func:`exposition`'s text."""


class DatabaseCollector(Collector):
    """The idsync metrics, read from the database at each scrape.

    When the database cannot be read the scrape still answers, with
    ``idsync_database_up 0`` alone, so an alert can tell a database outage
    from a node that is down."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._settled = metrics.Settled()
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("idsync_database_up", "1 when the idsync database answered this scrape, else 0.")
        with self._lock:
            try:
                snapshot = metrics.read(self._ws, self._settled)
            except Exception as exc:  # a scrape reports the outage instead of failing
                log.warning("metrics: the database could not be read: %s", mask_url_password(str(exc)))
                up.add_metric([], 0)
                yield up
                return
            self._settled = snapshot.settled
        up.add_metric([], 1)
        yield up
        yield from families(snapshot)


def families(snapshot: metrics.Snapshot) -> Iterator[Metric]:
    """The metric families of *snapshot*, as Prometheus exposes them."""
    runs = GaugeMetricFamily("idsync_runs", "Runs recorded, by kind and state.", labels=["kind", "state"])
    for (kind, state), n in sorted(snapshot.runs_by_state.items()):
        runs.add_metric([kind, state], n)
    yield runs

    durations = HistogramMetricFamily(
        "idsync_run_duration_seconds", "Duration of finished runs, from start to end, by kind.", labels=["kind"]
    )
    for kind, histogram in sorted(snapshot.totals.durations.items()):
        durations.add_metric([kind], histogram.cumulative(), sum_value=histogram.total)
    yield durations

    changed = CounterMetricFamily(
        "idsync_objects_changed", "Directory objects changed by finished runs, by operation.", labels=["operation"]
    )
    for op, n in snapshot.totals.changes.items():
        changed.add_metric([op], n)
    yield changed

    yield CounterMetricFamily(
        "idsync_record_errors", "Records that failed in finished runs (the runs went on).",
        value=snapshot.totals.record_errors,
    )

    outbox = GaugeMetricFamily(
        "idsync_outbox_messages", "Notifications in the outbox, by state (pending, sending, sent, failed).",
        labels=["state"],
    )
    for state in ("pending", "sending", "sent", "failed"):
        outbox.add_metric([state], snapshot.outbox.get(state, 0))
    yield outbox

    yield GaugeMetricFamily(
        "idsync_requests_pending", "Workflow requests awaiting approval.", value=snapshot.pending_requests
    )

    if snapshot.worker_jobs is not None:
        queue = GaugeMetricFamily(
            "idsync_worker_jobs", "Jobs of the workers' queue: waiting (todo) and running (doing).", labels=["status"]
        )
        for status, n in snapshot.worker_jobs.items():
            queue.add_metric([status], n)
        yield queue

    lag = GaugeMetricFamily(
        "idsync_scheduler_lag_seconds",
        f"Seconds from an occurrence's due time to its run's start, over the occurrences due in the last "
        f"{int(metrics.LAG_WINDOW.total_seconds() // 60)} minutes (quantile 1: the longest).",
        labels=["quantile"],
    )
    if snapshot.lag.count:
        for q, value in (("0.5", snapshot.lag.p50), ("0.95", snapshot.lag.p95), ("1", snapshot.lag.max)):
            lag.add_metric([q], value)
    yield lag
    yield GaugeMetricFamily(
        "idsync_scheduler_lag_occurrences", "Scheduled runs started whose occurrence is in the lag's window.",
        value=snapshot.lag.count,
    )


def registry(ws: Workspace) -> CollectorRegistry:
    """A registry with idsync's metrics over *ws* and this process's own."""
    found = CollectorRegistry(auto_describe=False)
    found.register(DatabaseCollector(ws))
    ProcessCollector(registry=found)
    return found


def exposition(source: CollectorRegistry) -> bytes:
    """The text exposition of *source* (one scrape)."""
    return generate_latest(source)


@dataclass
class MetricsServer:
    """A running metrics HTTP server; :meth:`stop` closes it."""

    address: str
    _server: Any
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(ws: Workspace, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``/metrics`` of *ws* on *host*:*port* from a daemon thread (port 0:
    any free port, named in the address returned), for a node that serves no
    HTTP of its own. Bound to loopback unless told otherwise: the metrics are
    open to whoever reaches the port."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host, registry=registry(ws))
    bound = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    return MetricsServer(f"http://{shown}:{bound}/metrics", server, thread)
