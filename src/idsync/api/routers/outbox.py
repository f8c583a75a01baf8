"""``/outbox``: notifications waiting for delivery; retry failed ones, purge finished ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from idsync.api.auth import Acting
from idsync.api.models import OutboxPage, Purged, Retried
from idsync.api.pagination import Page
from idsync.services import outbox

router = APIRouter(tags=["outbox"])


class Retry(BaseModel):
    ids: list[int] = Field(default_factory=list, description="Messages to retry (default: every failed one).")


MAX_AGE_DAYS = 36_500
"""The oldest age a purge can name (a hundred years): beyond, dates overflow."""


class Purge(BaseModel):
    states: list[str] = Field(default_factory=lambda: list(outbox.FINISHED), description="States to delete.")
    older_than_days: float | None = Field(
        default=None, ge=0, le=MAX_AGE_DAYS, allow_inf_nan=False, description="Only messages older than this."
    )


@router.get("/outbox", response_model=OutboxPage, summary="Outbox messages, newest first")
def list_messages(
    ws: Acting, page: Annotated[Page, Depends()],
    state: Annotated[list[str] | None, Query(description="pending, sending, sent, failed (repeat).")] = None,
    run_id: Annotated[int | None, Query(description="Only the messages of this run.")] = None,
) -> dict[str, Any]:
    states = outbox.check_states(state or ())
    found = outbox.list_messages(ws, states=states, run_id=run_id, limit=page.ask, after_id=page.position_id)
    return page.keyed(found, lambda message: message.id)


@router.post("/outbox/retry", response_model=Retried, summary="Put failed messages back in the outbox")
def retry(ws: Acting, body: Retry | None = None) -> dict[str, int]:
    return {"retried": outbox.retry(ws, (body or Retry()).ids)}


@router.post("/outbox/purge", response_model=Purged, summary="Delete finished messages (sent and failed by default)")
def purge(ws: Acting, body: Purge | None = None) -> dict[str, int]:
    body = body or Purge()
    older = timedelta(days=body.older_than_days) if body.older_than_days is not None else None
    return {"purged": outbox.purge(ws, states=outbox.check_states(body.states), older_than=older)}
