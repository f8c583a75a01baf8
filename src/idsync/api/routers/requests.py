"""``/requests``: runs waiting for approval; list (mine, inbox, all), read, decide.

Deciding needs the approver role and being eligible for the request (the
services check both). The approval that completes the number required
executes the request before the answer, which then names the run.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from idsync.api import models as out
from idsync.api.auth import Acting, api_state
from idsync.api.pagination import Page
from idsync.domain.changes import ChangeOp
from idsync.domain.plain import to_plain
from idsync.services import requests
from idsync.services.requests import Decided

router = APIRouter(tags=["requests"])


class Approve(BaseModel):
    kinds: list[ChangeOp] | None = Field(default=None, description="Approve only these kinds of change (default: all).")
    exclude: list[str] = Field(default_factory=list, description="DNs whose changes are left out, or single members of a group as GROUP_DN;MEMBER_DN.")
    comment: str = Field(default="", max_length=2000)


class Deny(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class Reroute(BaseModel):
    to: str = Field(min_length=1, max_length=200, description="The idsync user who decides instead.")
    reason: str = Field(default="", max_length=2000)


class Comment(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class Cancel(BaseModel):
    reason: str = Field(default="", max_length=2000)


def _decided(decided: Decided) -> dict[str, Any]:
    return {
        "request": to_plain(decided.request),
        "run": to_plain(decided.run) if decided.run is not None else None,
        "run_url": f"/api/v1/runs/{decided.run.id}" if decided.run is not None else None,
    }


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


@router.get("/requests", response_model=out.RequestPage, summary="Requests, newest first: mine, my inbox, or all")
def list_requests(
    ws: Acting, page: Annotated[Page, Depends()],
    scope: Annotated[Literal["mine", "inbox", "all"], Query(description="mine, inbox or all.")] = "mine",
    status: Annotated[str | None, Query(description="pending, approved, executed, denied, expired, cancelled.")] = None,
    requester: str | None = None,
    approver: Annotated[str | None, Query(description="Only pending requests this user may decide now.")] = None,
    collection: str | None = None,
    since: Annotated[dt.datetime | None, Query(description="Raised at or after (UTC unless an offset is given).")] = None,
    until: Annotated[dt.datetime | None, Query(description="Raised before.")] = None,
) -> dict[str, Any]:
    found = requests.list_requests(
        ws, scope, status=status, requester=requester, approver=approver, collection=collection,
        since=_aware(since), until=_aware(until), limit=page.ask, after=page.position,
    )
    return page.keyed(found, lambda row: (row.created_at, row.id))


@router.get("/requests/inbox-count", response_model=out.Count, summary="How many requests wait for my decision")
def inbox_count(ws: Acting) -> dict[str, int]:
    return {"count": requests.inbox_count(ws)}


@router.get("/requests/{request_id}", response_model=out.RequestDetail, summary="A request: its plans (counts, staleness), trail, who may decide")
def get_request(request_id: int, ws: Acting) -> dict[str, Any]:
    detail = requests.get(ws, request_id)
    found = to_plain(detail)
    found["plans"] = [
        {**plan, "url": f"/api/v1/plans/{plan['plan_id']}" if plan.get("plan_id") else None}
        for plan in found["plans"]
    ]
    return found  # type: ignore[no-any-return]


@router.post("/requests/{request_id}/approve", response_model=out.Decided, summary="Approve all or part (kinds, excluded DNs); may execute it")
def approve(request_id: int, body: Approve, ws: Acting, request: Request) -> dict[str, Any]:
    background = api_state(request).background
    kinds = [k.value for k in body.kinds] if body.kinds is not None else None
    return _decided(requests.approve(
        ws, request_id, kinds=kinds, exclude=body.exclude, comment=body.comment, runtime=background.runtime,
        hand_off=background.executor.hand_off,
    ))


@router.post("/requests/{request_id}/deny", response_model=out.Decided, summary="Deny (a reason is required): nothing is applied")
def deny(request_id: int, body: Deny, ws: Acting) -> dict[str, Any]:
    return _decided(requests.deny(ws, request_id, body.reason))


@router.post("/requests/{request_id}/reroute", response_model=out.Decided, summary="Hand the decision to another user")
def reroute(request_id: int, body: Reroute, ws: Acting) -> dict[str, Any]:
    return _decided(requests.reroute(ws, request_id, body.to, body.reason))


@router.post("/requests/{request_id}/comment", response_model=out.Decided, summary="Comment on a request")
def comment(request_id: int, body: Comment, ws: Acting) -> dict[str, Any]:
    return _decided(requests.comment(ws, request_id, body.text))


@router.post("/requests/{request_id}/cancel", response_model=out.Decided, summary="Cancel a request (its requester)")
def cancel(request_id: int, ws: Acting, body: Cancel | None = None) -> dict[str, Any]:
    return _decided(requests.cancel(ws, request_id, (body or Cancel()).reason))


@router.post("/requests/{request_id}/repreview", response_model=out.Decided, summary="Compute the request's plans again (approvals start over)")
def repreview(request_id: int, ws: Acting) -> dict[str, Any]:
    return _decided(requests.repreview(ws, request_id))
