"""The audit log: configuration changes newest first, filtered by kind of
object and object name, a page at a time; and the Verify button (auditors)
that checks the hash chains of the audit trails and shows the result."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from idsync.errors import ConfigError
from idsync.portal.admin import refusal
from idsync.portal.web import PortalRoute, Posted, Viewing, render
from idsync.services import audit, history

router = APIRouter(route_class=PortalRoute)

PAGE = 50
MAX_OFFSET = 100_000


@router.get("/admin/audit")
def list_audit(request: Request, who: Viewing, kind: str = "", name: str = "", offset: int = 0) -> Response:
    if not 0 <= offset <= MAX_OFFSET:
        raise ConfigError(f"the audit log pages through its newest {MAX_OFFSET} entries", field="offset")
    found = history.list_audit(who.ws, kind=kind.strip() or None, name=name.strip() or None,
                               limit=offset + PAGE + 1)[offset:]
    return render(request, "admin_audit.html", who, found=found[:PAGE], more=len(found) > PAGE, offset=offset,
                  page=PAGE, kind=kind, name=name, check=None, message=None)


@router.post("/admin/audit/verify")
def verify(request: Request, who: Viewing, form: Posted) -> Response:
    heads = [line for line in form.get("heads").split() if line]
    try:
        check = audit.verify(who.ws, heads=heads)
    except ConfigError as exc:
        return render(request, "admin_audit.html", who, status=422, found=[], more=False, offset=0, page=PAGE,
                      kind="", name="", check=None, message=refusal(exc))
    return render(request, "admin_audit.html", who, found=[], more=False, offset=0, page=PAGE, kind="", name="",
                  check=check, message=None)
