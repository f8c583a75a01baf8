"""The one place every change of a request's state is announced [S7, S5].

Each service that moves a request along (raised, escalated, approved,
denied, expired, cancelled, executed) calls :func:`announce` in the
transaction that records the change, so what is announced commits with
it or not at all. For now an announcement is a line in the log of the run
the request waits on, and the messages to its approvers or its requester
(:mod:`idsync.services.request_notifications`).
"""

from __future__ import annotations

from typing import Literal, get_args

from sqlalchemy.orm import Session

from idsync.services import request_notifications
from idsync.services.workspace import Workspace
from idsync.store.requests_repo import RequestRepository
from idsync.store.runs_repo import RunRepository

Event = Literal["awaiting", "reminder", "approved", "denied", "expired", "cancelled", "executed"]
EVENTS: tuple[str, ...] = get_args(Event)

_LINES = {
    "awaiting": "request {id} awaits approval ({kind}, {required} approval(s) needed, expires {expires})",
    "reminder": "request {id} escalated: its escalation approvers are reminded",
    "approved": "request {id} approved",
    "denied": "request {id} denied",
    "expired": "request {id} expired without a decision",
    "cancelled": "request {id} cancelled by its requester",
    "executed": "request {id} executed",
}


def announce(ws: Workspace, session: Session, request_id: int, event: Event) -> None:
    """Announce *event* of request *request_id*, in the caller's transaction."""
    if event not in EVENTS:
        raise ValueError(f"unknown request event {event!r}")
    request = RequestRepository(session).require(request_id)
    line = _LINES[event].format(
        id=request.id,
        kind=request.kind,
        required=request.required_approvals,
        expires=request.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
    )
    if request.outcome and event in ("denied", "executed", "cancelled", "expired"):
        line += f": {request.outcome}"
    RunRepository(session).log(request.run_id, "warning" if event in ("denied", "expired") else "info", line)
    request_notifications.queue(ws, session, request_id, event)
