"""Schedules: each with its triggers, targets, next run (in its own zone,
named) and last run; an enable toggle and run-now; a schedule's page with
its next runs and recent occurrences. Creating and editing are in
:mod:`idsync.portal.schedule_edit`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from idsync.api.auth import api_state
from idsync.domain.roles import Role
from idsync.portal.web import PortalRoute, Posted, Viewing, render, safe_next, see_other
from idsync.runtime.scheduler import run_now
from idsync.services import authz, schedules

router = APIRouter(route_class=PortalRoute)


@router.get("/schedules")
def list_schedules(request: Request, who: Viewing, started: str = "") -> Response:
    return render(request, "schedules.html", who, found=schedules.status(who.ws), started=started)


@router.get("/schedules/{name}")
def show_schedule(request: Request, who: Viewing, name: str, saved: str = "") -> Response:
    return render(request, "schedule.html", who, d=schedules.detail(who.ws, name, count=10), saved=bool(saved))


@router.post("/schedules/{name}/enabled")
def set_enabled(who: Viewing, form: Posted, name: str) -> Response:
    schedules.set_enabled(who.ws, name, form.get("enabled") == "true")
    return see_other(safe_next(form.get("back")) if form.get("back") else "/schedules")


@router.post("/schedules/{name}/run-now")
def run_schedule_now(request: Request, who: Viewing, _form: Posted, name: str) -> Response:
    authz.require(who.ws, Role.OPERATOR, "run collections")
    background = api_state(request).background
    started = run_now(who.ws, name, background.executor, background.runtime)
    if len(started) == 1:
        return see_other(f"/runs/{started[0].run_id}")
    return see_other(f"/runs?started={len(started)}")
