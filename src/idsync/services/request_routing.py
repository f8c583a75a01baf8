"""Who may decide a request now, and what its trail says: read by deciding, listing and notifying.

Kept apart from recording decisions (:mod:`idsync.services.request_decisions`)
and from announcing them (:mod:`idsync.services.request_events`), which
both read requests through it, so neither depends on the other to know who
is eligible.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from idsync.domain.workflow import WorkflowSettings
from idsync.errors import IdsyncError, NotFoundError
from idsync.services import definitions, directory_groups
from idsync.services.authz import rights
from idsync.services.workspace import Workspace
from idsync.store.requests_repo import RequestRepository, RequestRow, TrailRow, UserFacts
from idsync.workflow.approvers import Person, Routing, eligible
from idsync.workflow.requests import Decision, RequestFacts, Status, fold

log = logging.getLogger(__name__)


def store_workflows(ws: Workspace, stores: Iterable[str]) -> dict[str, WorkflowSettings]:
    """The workflows of the stores named (a store removed since, or without one, is left out)."""
    found: dict[str, WorkflowSettings] = {}
    for name in stores:
        try:
            store = definitions.load(ws, "store", name).definition
        except NotFoundError:
            continue
        workflow = getattr(store, "workflow", None)
        if isinstance(workflow, WorkflowSettings):
            found[name] = workflow
    return found


def acting_name(ws: Workspace) -> str:
    """The name the acting principal decides under: the idsync user it maps
    to (an OS account mapped to a user decides as that user), else its own."""
    if ws.principal.kind == "system":
        return ws.actor
    user = rights(ws).user
    return user.name if user is not None else ws.actor


def to_decision(row: TrailRow) -> Decision:
    return Decision.from_detail(actor=row.actor, action=row.action, at=row.at, comment=row.comment, detail=row.detail)


def facts(request: RequestRow) -> RequestFacts:
    return RequestFacts(request.id, request.requested_by, request.required_approvals, request.expires_at)


def people(users: Iterable[UserFacts]) -> list[Person]:
    return [Person(u.name, u.dn, u.disabled, u.approver) for u in users]


def routing(ws: Workspace, stores: Iterable[str]) -> Routing:
    """To whom requests following the workflows of *stores* go, as configured
    now; a directory group that cannot be read counts as empty (logged)."""
    found = Routing()
    for store, workflow in store_workflows(ws, stores).items():
        escalation = workflow.escalation
        found = found.union(
            Routing(
                named=frozenset(workflow.approvers),
                group_members=_members(ws, store, workflow.approver_group),
                escalation_named=frozenset(escalation.approvers) if escalation else frozenset(),
                escalation_group_members=_members(ws, store, escalation.approver_group if escalation else None),
            )
        )
    return found


def _members(ws: Workspace, store: str, group: str | None) -> frozenset[str]:
    if group is None:
        return frozenset()
    try:
        return directory_groups.member_dns(ws, store, group)
    except IdsyncError as exc:
        log.warning("approver group %r of store %r could not be read: %s", group, store, exc.message)
        return frozenset()


@dataclass(frozen=True)
class Snapshot:
    """A request with what its trail says and who may decide it now."""

    request: RequestRow
    trail: list[TrailRow]
    status: Status
    eligible: frozenset[str]


def snapshot(session: Session, request_id: int, route: Routing) -> Snapshot:
    """Request *request_id* as the database holds it now, with *route* applied."""
    repo = RequestRepository(session)
    request = repo.require(request_id)
    trail = repo.trail(request_id)
    status = fold([to_decision(row) for row in trail], request.required_approvals)
    who = eligible(
        route, people(repo.people()), requester=request.requested_by,
        rerouted_to=status.rerouted_to, escalation_step=status.escalation_step,
    )
    return Snapshot(request, trail, status, who)
