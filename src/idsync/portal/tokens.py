"""API tokens: mine (an admin also every user's), create one, revoke one.

The secret of a new token is on the answer to the create form only, once
(the database holds its hash alone): that answer is a page of its own,
never a redirect to a page that could show it again."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from idsync.domain.durations import parse_duration
from idsync.errors import ConfigError, NotFoundError, StateConflictError
from idsync.portal.admin import refusal
from idsync.portal.web import PortalRoute, Posted, Viewer, Viewing, render, see_other
from idsync.services import tokens

router = APIRouter(route_class=PortalRoute)

REFUSED = (ConfigError, StateConflictError, NotFoundError)


def _list(request: Request, who: Viewer, every: bool, *, status: int = 200, message: str | None = None,
          done: str = "") -> Response:
    found = tokens.list_tokens(who.ws, every_user=every)
    return render(request, "admin_tokens.html", who, status=status, found=found, every=every, message=message,
                  revoked=done == "revoked", made=None)


@router.get("/admin/tokens")
def list_tokens(request: Request, who: Viewing, every: str = "", done: str = "") -> Response:
    return _list(request, who, every == "1", done=done)


@router.post("/admin/tokens")
def create_token(request: Request, who: Viewing, form: Posted) -> Response:
    expires = form.get("expires").strip()
    try:
        try:
            lifetime = parse_duration(expires) if expires else None
        except ValueError as exc:
            raise ConfigError(str(exc), field="expires", hint="write it as 90d or 12h, or leave it empty") from exc
        made = tokens.create(who.ws, form.get("name"), user=form.get("user").strip() or None, expires=lifetime)
    except REFUSED as exc:
        return _list(request, who, False, status=422, message=refusal(exc))
    return render(request, "admin_tokens.html", who, status=201, found=tokens.list_tokens(who.ws), every=False,
                  message=None, revoked=False, made=made)


@router.post("/admin/tokens/revoke")
def revoke_token(request: Request, who: Viewing, form: Posted) -> Response:
    try:
        tokens.revoke(who.ws, form.get("token"), user=form.get("user").strip() or None)
    except REFUSED as exc:
        return _list(request, who, False, status=409, message=refusal(exc))
    return see_other("/admin/tokens?done=revoked" + ("&every=1" if form.get("every") == "1" else ""))
