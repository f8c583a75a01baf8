"""The outbox: its pending and failed messages (never their contents), the
retry of failed ones (all, or one) and the purge of finished ones
(operators; an admin is one)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from idsync.errors import ConfigError
from idsync.portal.web import PortalRoute, Posted, Viewing, render, see_other
from idsync.services import outbox

router = APIRouter(route_class=PortalRoute)

SHOWN = 200


@router.get("/admin/outbox")
def show_outbox(request: Request, who: Viewing, retried: int = -1, purged: int = -1) -> Response:
    waiting = outbox.list_messages(who.ws, states=outbox.WAITING, limit=SHOWN)
    failed = outbox.list_messages(who.ws, states=outbox.GIVEN_UP, limit=SHOWN)
    return render(request, "admin_outbox.html", who, waiting=waiting, failed=failed, shown=SHOWN,
                  retried=retried, purged=purged, may_act=who.has("operator"))


@router.post("/admin/outbox/retry")
def retry(who: Viewing, form: Posted) -> Response:
    chosen = form.get("id").strip()
    if chosen and not chosen.isdigit():
        raise ConfigError(f"{chosen!r} is not a message number", field="id")
    count = outbox.retry(who.ws, [int(chosen)] if chosen else [])
    return see_other(f"/admin/outbox?retried={count}")


@router.post("/admin/outbox/purge")
def purge(who: Viewing, _form: Posted) -> Response:
    return see_other(f"/admin/outbox?purged={outbox.purge(who.ws)}")
