"""``/metrics``: the node's Prometheus metrics, beside the API.

Open by default, as exporters usually are: the figures are counts and
durations, never a name or an address (see :mod:`idsync.services.metrics`).
With ``IDSYNC_METRICS_TOKEN`` set, a scrape must bear that token
(``Authorization: Bearer <token>``, Prometheus's ``authorization`` setting),
for a node whose port is reachable from where it should not be scraped.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request, Response

from idsync import settings
from idsync.api.auth import BEARER_CHALLENGE
from idsync.api.errors import ApiProblem
from idsync.runtime import metrics
from idsync.services.workspace import Workspace

PATH = "/metrics"


def install(app: FastAPI, ws: Workspace) -> None:
    """Serve the metrics of *ws* at :data:`PATH` on *app* (left out of the OpenAPI document)."""
    registry = metrics.registry(ws)

    @app.get(PATH, include_in_schema=False)
    def scrape(request: Request) -> Response:
        _check_token(request.headers.get("authorization", ""))
        return Response(metrics.exposition(registry), media_type=metrics.CONTENT_TYPE)


def _check_token(header: str) -> None:
    expected = settings.get("metrics_token")
    if not expected:
        return
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise ApiProblem(401, "/metrics needs the metrics token: Authorization: Bearer <IDSYNC_METRICS_TOKEN>",
                         headers=BEARER_CHALLENGE)
