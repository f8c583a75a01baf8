"""The admin section's front page, its shared refusal text, and the
settings page (read-only: each setting's effective value and where it
comes from, secrets masked)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from idsync.errors import IdsyncError
from idsync.portal.web import PortalRoute, Viewing, render
from idsync.services import settings_view

router = APIRouter(route_class=PortalRoute)


def refusal(exc: IdsyncError) -> str:
    """What a page says when a service refused its form: the message and its hint."""
    return exc.message + (f" ({exc.hint})" if exc.hint else "")


@router.get("/admin")
def admin_index(request: Request, who: Viewing) -> Response:
    return render(request, "admin.html", who)


@router.get("/admin/settings")
def show_settings(request: Request, who: Viewing) -> Response:
    return render(request, "admin_settings.html", who, found=settings_view.effective_settings(who.ws))
