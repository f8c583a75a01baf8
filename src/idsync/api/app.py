"""The app factory: one FastAPI app over one shared workspace.

OpenAPI is at ``/api/openapi.json``, its documentation at ``/api/docs``,
and every route under ``/api/v1``. The app owns the threads its long work
runs in (:mod:`idsync.api.state`) and stops them when it shuts down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from idsync import __version__
from idsync.api import errors, metrics, request_ids
from idsync.api.auth import Sessions
from idsync.api.routers import (
    audit,
    collections,
    database,
    definition_files,
    definitions,
    directory,
    jobs,
    outbox,
    plans,
    requests,
    runs,
    schedules,
    session,
    smartgroups,
    status,
    tasks,
    users,
)
from idsync.api.state import ApiConfig, Background
from idsync.services.workspace import Workspace

PREFIX = "/api/v1"
SESSION_PURPOSE = "api session cookies"


@dataclass
class ApiState:
    """What every handler reaches through ``request.app.state.idsync``."""

    ws: Workspace
    config: ApiConfig
    sessions: Sessions
    background: Background


def create_app(ws: Workspace, config: ApiConfig | None = None) -> FastAPI:
    """The REST API over *ws* (one workspace shared by every request, each
    request acting for its own principal)."""
    config = config or ApiConfig()
    secret = config.session_secret or ws.secrets.derive(SESSION_PURPOSE)
    state = ApiState(ws, config, Sessions(secret, config.session_max_age), Background(ws, config))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.background.shutdown()

    app = FastAPI(
        title="idsync",
        version=__version__,
        description="Identity synchronization: stores, sources, jobs, collections, runs, requests.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.idsync = state
    errors.install(app)
    for module in (session, status, definitions, jobs, plans, runs, collections, schedules, requests,
                   smartgroups, directory, definition_files, database, users, audit, outbox, tasks):
        app.include_router(module.router, prefix=PREFIX)
    metrics.install(app, ws)
    request_ids.install(app)
    return app
