"""The dashboard: runs of the last 24 hours by state, failures and held
runs, the requests waiting for me, and the next scheduled runs
(:func:`idsync.services.status.status`, what ``idsync status`` shows)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from idsync.portal.web import PortalRoute, Viewing, render
from idsync.services import history, requests
from idsync.services import status as status_service

router = APIRouter(route_class=PortalRoute)

HELD_SHOWN = 5


@router.get("/")
def dashboard(request: Request, who: Viewing) -> Response:
    found = status_service.status(who.ws)
    held = history.list_runs(who.ws, state="held", limit=HELD_SHOWN)
    inbox = requests.list_requests(who.ws, "inbox", limit=10) if who.has("approver") else []
    return render(request, "dashboard.html", who, status=200, found=found, held=held, inbox=inbox)
