"""The audit log: configuration changes newest first, filtered by kind of
object and object name, a page at a time (by keyset, as the API's lists:
*Older* carries the last entry's position, so a deep page costs what the
first does); and the Verify button (auditors) that checks the hash chains
of the audit trails and shows the result."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from idsync.api.pagination import decode_position, encode_position
from idsync.errors import ConfigError
from idsync.portal.admin import refusal
from idsync.portal.web import PortalRoute, Posted, Viewing, render
from idsync.services import audit, history

router = APIRouter(route_class=PortalRoute)

PAGE = 50


@router.get("/admin/audit")
def list_audit(request: Request, who: Viewing, kind: str = "", name: str = "", cursor: str = "") -> Response:
    found = history.list_audit(who.ws, kind=kind.strip() or None, name=name.strip() or None, limit=PAGE + 1,
                               after=decode_position(cursor or None))
    shown = found[:PAGE]
    older = encode_position(shown[-1].at, shown[-1].id) if len(found) > PAGE else ""
    return render(request, "admin_audit.html", who, found=shown, older=older, first=not cursor,
                  kind=kind, name=name, check=None, message=None)


@router.post("/admin/audit/verify")
def verify(request: Request, who: Viewing, form: Posted) -> Response:
    heads = [line for line in form.get("heads").split() if line]
    try:
        check = audit.verify(who.ws, heads=heads)
    except ConfigError as exc:
        return render(request, "admin_audit.html", who, status=422, found=[], older="", first=True,
                      kind="", name="", check=None, message=refusal(exc))
    return render(request, "admin_audit.html", who, found=[], older="", first=True, kind="", name="",
                  check=check, message=None)
