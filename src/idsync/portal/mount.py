"""Mounting the portal into the API's app: its routers and its static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from idsync.portal import (
    admin,
    audit,
    dashboard,
    definitions,
    directory,
    outbox,
    plans,
    requests,
    runs,
    schedule_edit,
    schedules,
    signin,
    tokens,
    users,
    wizard,
)

STATIC = Path(__file__).parent / "static"
STATIC_PATH = "/static"


def install(app: FastAPI) -> None:
    """Serve the portal's pages at ``/`` and its CSS and JavaScript at :data:`STATIC_PATH`."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="portal-static")
    # the wizard before definitions: /collections/new is not a collection's page (nor /schedules/new a schedule's)
    for module in (signin, dashboard, requests, runs, plans, schedule_edit, schedules, wizard, definitions,
                   directory, admin, users, tokens, audit, outbox):
        app.include_router(module.router, include_in_schema=False)
