"""Messages about workflow requests, queued in the outbox [S7.2, S7.4, S5.1].

- *awaiting*: to each approver who may decide the request and has not, one
  message per request round (a new preview starts a round; a re-route
  reaches only the approver it adds), with the plans' counts, the first
  changes (every delete of a held run), the link and the commands;
- *reminder*: on escalation, to each approver who may decide it then, at
  most one per approver and escalation step;
- *executed*, *denied*, *expired*, *cancelled*: the outcome, to the
  requester (for a scheduled run: the collection's recipients).

The outbox's key (run, trigger, channel, recipient) is what keeps a message
from being queued twice: the trigger names the request, the event and the
round or step. Messages go through the notification server of the first of
the request's stores that has one. A notification problem never undoes a
decision: it is logged on the run, and the decision stands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from idsync import settings
from idsync.domain.changes import ChangeOp
from idsync.errors import NotFoundError
from idsync.notify.changes import describe
from idsync.notify.events import ChangedObject
from idsync.notify.request_notice import (
    TO_APPROVERS,
    PlanSummary,
    RequestEvent,
    RequestNotice,
    render_request,
)
from idsync.services import definitions, notifications
from idsync.services.notifications import EMAIL, OutboxPolicy, changes_shown, seal, templates_dir
from idsync.services.request_routing import routing, snapshot
from idsync.services.workspace import Workspace
from idsync.store.outbox_repo import NewMessage, OutboxRepository
from idsync.store.plans_repo import PlanRepository
from idsync.store.requests_repo import RequestRepository, RequestRow, TrailRow
from idsync.store.runs_repo import RunRepository
from idsync.store.tables import utcnow
from idsync.store.users_repo import UserRepository
from idsync.workflow.requests import Decision

log = logging.getLogger(__name__)

DELETES_LISTED = 1000
"""The most deletes a held request's message lists one by one."""

QUEUED_FOR: frozenset[str] = frozenset({"awaiting", "reminder", "executed", "denied", "expired", "cancelled"})
"""Events that send messages (an approval is told by its execution)."""


def queue(ws: Workspace, session: Session, request_id: int, event: RequestEvent, *,
          clock: Callable[[], datetime] = utcnow) -> int:
    """Queue the messages of *event* of request *request_id* in *session*;
    how many were queued. Never raises a notification problem (see the module)."""
    if event not in QUEUED_FOR:
        return 0
    request = RequestRepository(session).require(request_id)
    return notifications.never_failing(
        session, request.run_id, f"request {request_id}",
        lambda: _queue(ws, session, request, event, clock), clock=clock,
    )


def _queue(ws: Workspace, session: Session, request: RequestRow, event: RequestEvent,
           clock: Callable[[], datetime]) -> int:
    runs = RunRepository(session, clock=clock)
    now = snapshot(session, request.id, routing(ws, request.stores))
    if event in TO_APPROVERS:
        names = sorted(now.eligible - now.status.decided_by)
        if event == "awaiting" and now.trail and now.trail[-1].action == "reroute":
            names = [name for name in names if name == now.trail[-1].detail.get("to_user")]
        recipients = _addresses(session, names)
        rounds = sum(1 for row in now.trail if row.action == "repreview")
        key = f"request {request.id} awaiting" + (f" round {rounds + 1}" if rounds else "") if event == "awaiting" else (
            f"request {request.id} reminder {now.status.escalation_step}"
        )
    else:
        recipients = _requester_addresses(ws, session, request)
        key = f"request {request.id} {event}"
    if not recipients:
        runs.log(request.run_id, "info", f"request {request.id} {event}: nobody to notify has an email address")
        return 0
    store = _sending_store(ws, request.stores)
    if store is None:
        runs.log(request.run_id, "warning",
                 f"request {request.id} {event}: not notified, no store of the request has a notification server")
        return 0
    notice = _notice(session, request, event, now.status.approvals, now.status.escalation_step, now.trail)
    message = render_request(notice, templates_dir=templates_dir())
    payload = seal(ws, {"subject": message.subject, "text": message.text, "html": message.html})
    outbox = OutboxRepository(session, clock=clock)
    policy = OutboxPolicy.from_settings()
    queued = 0
    for address in recipients:
        new = NewMessage(request.run_id, request.collection_name, key, EMAIL, address, payload, store)
        queued += outbox.enqueue(new, give_up_after=policy.give_up)
    if queued:
        runs.log(request.run_id, "info", f"request {request.id} {event}: {queued} message(s) queued")
    return queued


def _addresses(session: Session, names: Iterable[str]) -> list[str]:
    users = UserRepository(session)
    found = []
    for name in names:
        user = users.by_name(name)
        if user is not None and user.email and not user.disabled:
            found.append(user.email)
    return list(dict.fromkeys(found))


def _requester_addresses(ws: Workspace, session: Session, request: RequestRow) -> list[str]:
    """The requester's address; for a run raised by a schedule, the collection's recipients."""
    found = _addresses(session, [request.requested_by])
    if found:
        return found
    try:
        collection = definitions.load(ws, "collection", request.collection_name).definition
    except NotFoundError:
        return []
    return list(dict.fromkeys(collection.notifications.recipients)) if collection.notifications.enabled else []


def _sending_store(ws: Workspace, stores: Iterable[str]) -> str | None:
    for name in stores:
        try:
            store = definitions.load(ws, "store", name).definition
        except NotFoundError:
            continue
        if store.notification_server is not None:
            return name
    return None


def _notice(session: Session, request: RequestRow, event: RequestEvent, approvals: Iterable[Decision],
            step: int, trail: list[TrailRow]) -> RequestNotice:
    plans = PlanRepository(session)
    summaries: list[PlanSummary] = []
    changes: list[ChangedObject] = []
    deletes: list[str] = []
    total = 0
    shown = changes_shown()
    for bound in RequestRepository(session).plans(request.id):
        row = plans.get(bound.plan_id) if bound.plan_id is not None else None
        if row is None:
            continue
        summaries.append(PlanSummary(bound.job_name, row.id, row.counts))
        total += row.change_count
        if request.kind == "held":
            for _seq, change in plans.changes(row.id, limit=DELETES_LISTED - len(deletes), op=ChangeOp.DELETE):
                deletes.append(change.dn)
        for _seq, change in plans.changes(row.id, limit=max(shown - len(changes), 0), op=ChangeOp.DELETE):
            changes.append(describe(bound.job_name, change))
        if len(changes) < shown:
            for _seq, change in plans.changes(row.id, limit=shown):
                if change.op is not ChangeOp.DELETE and len(changes) < shown:
                    changes.append(describe(bound.job_name, change))
    closing = trail[-1] if trail else None
    run = RunRepository(session).get(request.run_id)
    return RequestNotice(
        request_id=request.id,
        event=event,
        collection=request.collection_name,
        kind=request.kind,
        reason=request.reason,
        requested_by=request.requested_by,
        created_at=request.created_at,
        expires_at=request.expires_at,
        required=request.required_approvals,
        approvals=tuple(sorted({approval.actor for approval in approvals})),
        plans=tuple(summaries),
        changes=tuple(changes),
        changes_total=total,
        deletes=tuple(deletes),
        decided_by=closing.actor if closing is not None and event in ("denied", "cancelled") else None,
        comment=closing.comment if closing is not None and event == "denied" else None,
        applied=run.counts if run is not None and event == "executed" else None,
        run_state=run.state.value if run is not None else None,
        not_approved=run.counts.not_approved if run is not None and event == "executed" else 0,
        escalation_step=step,
        link=request_link(request.id),
    )


def request_link(request_id: int) -> str | None:
    """The address of request *request_id* in the portal, when base_url is set."""
    base = settings.get("base_url").rstrip("/")
    return f"{base}/requests/{request_id}" if base else None
