"""A plan: its counts, record errors, and its changes as per-object diffs,
filtered by operation, attribute and text; exports as CSV, JSON or LDIF."""

from __future__ import annotations

import io

from fastapi import APIRouter, Request, Response

from idsync.domain.changes import ChangeOp
from idsync.errors import ConfigError
from idsync.portal.web import PortalRoute, Viewing, render
from idsync.services import history

router = APIRouter(route_class=PortalRoute)

CHANGES_SHOWN = 500
MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json", "ldif": "text/plain; charset=utf-8"}


@router.get("/plans/{plan_id}")
def show_plan(request: Request, who: Viewing, plan_id: int, op: str = "", attribute: str = "",
              text: str = "") -> Response:
    plan = history.get_plan(who.ws, plan_id)
    errors, error_total = history.plan_errors(who.ws, plan_id, limit=100)
    changes = list(history.plan_changes(who.ws, plan_id, op=history.change_op(op), limit=CHANGES_SHOWN + 1,
                                        attribute=attribute.strip() or None, text=text.strip() or None))
    return render(
        request, "plan.html", who, plan=plan, errors=errors, error_total=error_total,
        changes=changes[:CHANGES_SHOWN], more=len(changes) > CHANGES_SHOWN, op=op, attribute=attribute, text=text, ops=[o.value for o in ChangeOp],
        formats=list(MEDIA),
    )


@router.get("/plans/{plan_id}/export.{fmt}")
def export_plan(who: Viewing, plan_id: int, fmt: str) -> Response:
    if fmt not in MEDIA:
        raise ConfigError(f"{fmt!r} is not an export format; the formats are {', '.join(MEDIA)}", field="format")
    out = io.StringIO()
    history.export_plan(who.ws, plan_id, fmt, out)
    return Response(out.getvalue(), media_type=MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="plan-{plan_id}.{fmt}"'})
