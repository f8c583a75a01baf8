"""Recording one decision on a request: checked against its trail, appended, announced.

Every decision, a person's or idsync's own (expiry, escalation,
execution), goes through :func:`record`: in one transaction it takes the
trail's lock, reads the trail, checks the decision with the pure state
machine (:func:`idsync.workflow.requests.decide`) against who is eligible
now, appends it, updates the request's cached state, ends the run the
request waited on when the request closes without running it, and
announces the change. Who is eligible depends on the stores' workflow
settings and on directory groups, read before the transaction (a directory
may be slow; the trail's lock is held only for the database work).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from idsync.domain.results import RunState
from idsync.errors import ConfigError
from idsync.services import notifications
from idsync.services.request_events import Event, announce
from idsync.services.request_routing import Snapshot, facts, routing, snapshot, to_decision
from idsync.services.workspace import Workspace
from idsync.store.requests_repo import (
    NewDecision,
    RequestRepository,
    RequestRow,
)
from idsync.store.runs_repo import RunRepository
from idsync.store.tables import utcnow
from idsync.workflow.approvers import normalized_exclusion
from idsync.workflow.requests import Decision, Status, decide

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "idsync"
"""The actor of the decisions idsync takes on its own: expiry, escalation, execution."""

_ENDS: dict[str, tuple[RunState, Event]] = {
    "denied": (RunState.DENIED, "denied"),
    "expired": (RunState.EXPIRED, "expired"),
    "cancelled": (RunState.CANCELLED, "cancelled"),
}


def record(
    ws: Workspace,
    request_id: int,
    decision: Decision,
    *,
    also: Callable[[Session, Snapshot], None] | None = None,
    outcome: Callable[[Snapshot, Status], str | None] | None = None,
    clock: Callable[[], datetime] = utcnow,
    **values: object,
) -> Status:
    """Check *decision* against request *request_id*'s trail and append it (see
    the module docstring); the status it leads to. *also* runs in the same
    transaction once the decision is allowed: it may refuse it with what only
    the database knows (a re-route's target), or write with it; *outcome*
    gives the request's outcome text once it closes."""
    with ws.db.session() as session:
        request = RequestRepository(session).require(request_id)
    route = routing(ws, request.stores)
    with ws.db.session() as session:
        repo = RequestRepository(session, clock=clock)
        repo.lock_trail()
        now = snapshot(session, request_id, route)
        status = decide(facts(now.request), [to_decision(r) for r in now.trail], decision, now.eligible)
        if also is not None:
            also(session, now)
        text = outcome(now, status) if outcome is not None and status.closed else None
        if text is None and status.closed and decision.action != "execute":
            text = f"{status.state} by {decision.actor}" + (f": {decision.comment}" if decision.comment else "")
        repo.append(
            request_id,
            NewDecision(decision.actor, decision.action, decision.at, decision.comment, decision.detail()),
            status.state,
            closed=status.closed,
            outcome=text,
            **values,
        )
        _after(ws, session, now.request, now.status, status, text, clock, decision.action)
    return status


def _after(
    ws: Workspace,
    session: Session,
    request: RequestRow,
    before: Status,
    status: Status,
    outcome: str | None,
    clock: Callable[[], datetime],
    action: str,
) -> None:
    """End the run of a request closed without running, and announce the change
    (a re-route or a new preview: to whom it newly awaits, or everyone again)."""
    if status.state in _ENDS:
        state, event = _ENDS[status.state]
        repo = RequestRepository(session, clock=clock)
        reason = f"request {request.id} {outcome or status.state}: nothing was applied"
        if repo.end_awaiting(request.run_id, state, reason):
            RunRepository(session, clock=clock).log(request.run_id, "warning", reason)
            notifications.enqueue_run(ws, session, request.run_id, clock=clock)
        elif request.kind == "held":
            RunRepository(session, clock=clock).log(
                request.run_id, "warning", f"request {request.id} {outcome or status.state}: the held plans stay unapplied"
            )
        announce(ws, session, request.id, event)
    elif status.state == "approved" and before.state != "approved":
        announce(ws, session, request.id, "approved")
    elif status.state == "executed":
        announce(ws, session, request.id, "executed")
    elif status.escalation_step > before.escalation_step:
        announce(ws, session, request.id, "reminder")
    elif action in ("reroute", "repreview"):
        announce(ws, session, request.id, "awaiting")


def check_approver_user(name: str) -> Callable[[Session, Snapshot], None]:
    """A re-route's target must be an enabled user holding the approver role."""

    def check(session: Session, now: Snapshot) -> None:
        found = {p.name: p for p in RequestRepository(session).people()}
        person = found.get(name)
        if person is None:
            raise ConfigError(f"no user {name!r} to re-route request {now.request.id} to", field="to",
                              hint="name an existing user who holds the approver role")
        if person.disabled or not person.approver:
            raise ConfigError(
                f"user {name!r} cannot decide request {now.request.id}: "
                + ("the user is disabled" if person.disabled else "the user does not hold the approver role"),
                field="to", hint="name an enabled user who holds the approver role",
            )

    return check


def exclusions(dns: Iterable[str]) -> frozenset[str]:
    """The DNs an approver left out, or single members of a group
    (``GROUP_DN;MEMBER_DN``), normalised (ConfigError naming one that does not parse)."""
    found: set[str] = set()
    for dn in dns:
        try:
            found.add(normalized_exclusion(dn))
        except ConfigError as exc:
            raise ConfigError(f"excluded DN {dn!r} is not valid: {exc.message}", field="exclude") from exc
    return frozenset(found)
