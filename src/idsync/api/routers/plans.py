"""``/plans``: what previews and runs computed; their changes (filtered by
operation, paged by cursor) and exports (CSV, JSON, LDIF)."""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from idsync.api.auth import Acting
from idsync.api.models import ChangePage, PlanPage, PlanReport
from idsync.api.pagination import Page
from idsync.domain.changes import ChangeOp
from idsync.domain.plain import to_plain
from idsync.services import history, plan_export

router = APIRouter(tags=["plans"])

MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json", "ldif": "text/plain; charset=utf-8"}


@router.get("/plans", response_model=PlanPage, summary="Plans, newest first")
def list_plans(
    ws: Acting, page: Annotated[Page, Depends()],
    job: Annotated[str | None, Query(description="Only this job's plans.")] = None,
) -> dict[str, Any]:
    found = history.list_plans(ws, job=job, limit=page.ask, after=page.position)
    return page.keyed(found, lambda plan: (plan.created_at, plan.id))


@router.get("/plans/{plan_id}", response_model=PlanReport, summary="A plan: its state, counts and record errors")
def get_plan(
    plan_id: int, ws: Acting, errors: Annotated[int, Query(ge=0, le=10_000, description="Errors to list.")] = 100,
) -> dict[str, Any]:
    plan = history.get_plan(ws, plan_id)
    found, total = history.plan_errors(ws, plan_id, limit=errors)
    return {
        "plan": to_plain(plan), "errors": to_plain(found), "error_total": total,
        "changes": f"/api/v1/plans/{plan_id}/changes",
    }


@router.get("/plans/{plan_id}/changes", response_model=ChangePage, summary="A plan's changes in order, optionally of one operation")
def plan_changes(
    plan_id: int, ws: Acting, page: Annotated[Page, Depends()],
    op: Annotated[ChangeOp | None, Query(description="Only changes of this operation.")] = None,
    attribute: Annotated[str | None, Query(max_length=200, description="Only changes touching this attribute.")] = None,
    text: Annotated[str | None, Query(max_length=1000, description="Only changes whose DN or values hold this.")] = None,
) -> dict[str, Any]:
    history.get_plan(ws, plan_id)  # 404 for an unknown plan, not an empty page
    found = history.numbered_changes(ws, plan_id, op=op, attribute=attribute or None, text=text or None,
                                     limit=page.ask, after_seq=-1 if page.position_id is None else page.position_id)
    return page.keyed(found, lambda pair: pair[0], lambda pair: plan_export.change_to_dict(pair[1]))

EXPORT_SCHEMAS: dict[str, dict[str, Any]] = {
    "csv": {"type": "string"}, "ldif": {"type": "string"},
    "json": {"type": "array", "items": {"type": "object"}},
}


@router.get("/plans/{plan_id}/export", summary="A plan as CSV, JSON or LDIF",
            response_class=Response, responses={200: {"description": "The plan's changes in the format asked for.",
                                                      "content": {m.split(";")[0]: {"schema": EXPORT_SCHEMAS[f]}
                                                                  for f, m in MEDIA.items()}}})
def export_plan(
    plan_id: int, ws: Acting, format: Annotated[Literal["csv", "json", "ldif"], Query()] = "json",
) -> Response:
    out = io.StringIO()
    history.export_plan(ws, plan_id, format, out)
    return Response(
        out.getvalue(), media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="plan-{plan_id}.{format}"'},
    )
