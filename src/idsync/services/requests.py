"""Workflow requests: decide them, read them, list them [S7.2–S7.4].

A person decides under the idsync user they act as; deciding (approve,
deny, re-route) needs the approver role *and* being eligible for the
request: named by its stores' workflows, a member of their approver group,
re-routed to, or an escalation approver once escalated. idsync acting on
its own never approves. The requester cancels; approvers and operators
comment; operators and approvers preview a request again (fresh plans in
the same request; the approvals start over).

The approval that makes a request approved executes it at once, in the
approver's process (:func:`idsync.services.request_runs.execute_approved`),
or, from a server deferring runs to the workers, in a worker.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from idsync.domain.changes import MEMBER_ATTRIBUTES, Change, ChangeOp
from idsync.domain.results import Counts
from idsync.domain.roles import Role
from idsync.errors import ConfigError, NotFoundError, StateConflictError
from idsync.services import authz, collections, request_gate, request_routing, request_runs
from idsync.services.collection_runs import Runtime
from idsync.services.request_decisions import check_approver_user, exclusions, record
from idsync.services.request_routing import (
    Snapshot,
    acting_name,
    people,
    routing,
    snapshot,
    to_decision,
)
from idsync.services.workspace import Workspace
from idsync.store.keyset import Position
from idsync.store.plans_repo import PlanRepository
from idsync.store.requests_repo import NewPlan, RequestRepository, RequestRow, TrailRow
from idsync.store.runs_repo import RunRow
from idsync.store.tables import utcnow
from idsync.workflow.approvers import MEMBER_SEPARATOR, Routing, eligible, intersect
from idsync.workflow.requests import Decision, Status, fold

Scope = Literal["mine", "inbox", "all"]
SCOPES: tuple[str, ...] = ("mine", "inbox", "all")


@dataclass(frozen=True)
class Decided:
    """What a decision did: the request as it is now, and the run that
    executed it (the approval that made it approved)."""

    request: RequestRow
    run: RunRow | None = None


@dataclass(frozen=True)
class PlanView:
    """A plan a request binds, with its counts and whether it is stale."""

    job_name: str
    plan_id: int | None
    computed_at: datetime
    counts: Counts | None
    change_count: int
    state: str | None
    stale: str | None
    """Why the plan is stale (too old, its source changed), or None."""


@dataclass(frozen=True)
class RequestDetail:
    """A request with its plans, trail, state and who may decide it now."""

    request: RequestRow
    plans: list[PlanView]
    trail: list[TrailRow]
    status: Status
    eligible: list[str]
    applies: str
    """What the approvals so far let through, in words."""


# ---------------------------------------------------------------- decisions


def approve(
    ws: Workspace,
    request_id: int,
    *,
    kinds: Collection[str] | None = None,
    exclude: Iterable[str] = (),
    comment: str = "",
    runtime: Runtime | None = None,
    hand_off: request_runs.HandOff | None = None,
) -> Decided:
    """Approve request *request_id*, all of it or only the changes of *kinds*
    and not on the DNs in *exclude*. The approval that completes the number
    required executes the request here and now, or with *hand_off* (a server
    deferring runs to the workers) claims its run and hands it to them."""
    authz.require(ws, Role.APPROVER, "decide requests")
    runtime = runtime or Runtime()
    decision = Decision(
        acting_name(ws), "approve", runtime.clock(), comment.strip(),
        kinds=_kinds(kinds), excluded=exclusions(exclude),
    )
    status = record(ws, request_id, decision, clock=runtime.clock)
    run = request_runs.execute_approved(ws, request_id, runtime, hand_off) if status.state == "approved" else None
    return Decided(_read(ws, request_id), run)


def deny(ws: Workspace, request_id: int, reason: str) -> Decided:
    """Deny request *request_id* (a reason is required): it ends, nothing is applied."""
    authz.require(ws, Role.APPROVER, "decide requests")
    record(ws, request_id, Decision(acting_name(ws), "deny", utcnow(), reason.strip()))
    return Decided(_read(ws, request_id))


def reroute(ws: Workspace, request_id: int, to_user: str, reason: str) -> Decided:
    """Route request *request_id* to approver *to_user* too (a reason is required)."""
    authz.require(ws, Role.APPROVER, "decide requests")
    decision = Decision(acting_name(ws), "reroute", utcnow(), reason.strip(), to_user=to_user.strip())
    record(ws, request_id, decision, also=check_approver_user(to_user.strip()))
    return Decided(_read(ws, request_id))


def comment(ws: Workspace, request_id: int, text: str) -> Decided:
    """Add a comment to the trail of request *request_id*."""
    authz.require_any(ws, (Role.APPROVER, Role.OPERATOR), "comment on requests")
    if not text.strip():
        raise ConfigError("a comment needs some text", field="comment")
    record(ws, request_id, Decision(acting_name(ws), "comment", utcnow(), text.strip()))
    return Decided(_read(ws, request_id))


def cancel(ws: Workspace, request_id: int, reason: str = "") -> Decided:
    """Cancel request *request_id*; only its requester may."""
    record(ws, request_id, Decision(acting_name(ws), "cancel", utcnow(), reason.strip()))
    return Decided(_read(ws, request_id))


def repreview(ws: Workspace, request_id: int) -> Decided:
    """Compute fresh plans for request *request_id*, in the same request; the
    approvals given so far no longer count."""
    authz.require_any(ws, (Role.OPERATOR, Role.APPROVER), "preview requests again")
    request = _read(ws, request_id)
    if request.kind == "held":
        raise StateConflictError(
            f"request {request_id} binds the plans of a held run: they cannot be computed again",
            hint="deny it, and run the collection again for fresh plans",
        )
    if request.state != "pending":
        raise StateConflictError(f"request {request_id} is {request.state}: only a pending request can be previewed again")
    fingerprints = {name: request_gate.fingerprint(ws, name) for name in _job_names(ws, request)}
    preview = collections.preview_collection(ws, request.collection_name)
    now = utcnow()
    plans = [
        NewPlan(item.job, item.plan.id if item.plan else None, fingerprints.get(item.job), now) for item in preview.jobs
    ]

    def replace(session: Session, _now: Snapshot) -> None:
        RequestRepository(session).replace_plans(request_id, plans)

    counts = preview.counts.summary() or "no change"
    record(ws, request_id, Decision(acting_name(ws), "repreview", now, f"fresh plans: {counts}"), also=replace)
    return Decided(_read(ws, request_id))


def _kinds(kinds: Collection[str] | None) -> frozenset[ChangeOp] | None:
    if kinds is None:
        return None
    found: set[ChangeOp] = set()
    for kind in kinds:
        try:
            found.add(ChangeOp(kind.strip().lower()))
        except ValueError:
            raise ConfigError(
                f"{kind!r} is not a kind of change; the kinds are {', '.join(op.value for op in ChangeOp)}",
                field="only",
            ) from None
    if not found:
        raise ConfigError("an approval of no kind of change approves nothing: deny the request instead", field="only")
    return frozenset(found)


def _job_names(ws: Workspace, request: RequestRow) -> list[str]:
    try:
        return [entry.job for entry in collections.load_collection(ws, request.collection_name)[1].jobs]
    except NotFoundError:
        return []


def _read(ws: Workspace, request_id: int) -> RequestRow:
    with ws.db.session() as session:
        return RequestRepository(session).require(request_id)


# ---------------------------------------------------------------- reading


def get(ws: Workspace, request_id: int) -> RequestDetail:
    """Request *request_id* with its plans (counts, stale flags), trail and eligible approvers."""
    authz.require_any(ws, (Role.APPROVER, Role.OPERATOR, Role.AUDITOR), "read requests")
    request = _read(ws, request_id)
    route = routing(ws, request.stores)
    with ws.db.session() as session:
        now = snapshot(session, request_id, route)
        stored = RequestRepository(session).plans(request_id)
        plans_repo = PlanRepository(session)
        rows = {p.plan_id: plans_repo.get(p.plan_id) for p in stored if p.plan_id is not None}
    stale_after = _stale_after(ws, request)
    views = []
    for plan in stored:
        row = rows.get(plan.plan_id) if plan.plan_id is not None else None
        views.append(PlanView(
            plan.job_name, plan.plan_id, plan.computed_at,
            row.counts if row else None, row.change_count if row else 0, row.state if row else None,
            _stale(ws, plan, stale_after, open_=not now.status.closed),
        ))
    return RequestDetail(
        now.request, views, now.trail, now.status, sorted(now.eligible), intersect(now.status.approvals).describe()
    )


def _stale_after(ws: Workspace, request: RequestRow) -> timedelta | None:
    found = request_routing.store_workflows(ws, request.stores)
    return min((w.stale_after for w in found.values()), default=None)


def _stale(ws: Workspace, plan: NewPlan, stale_after: timedelta | None, *, open_: bool) -> str | None:
    if not open_:
        return None
    if stale_after is not None and utcnow() - plan.computed_at > stale_after:
        return f"computed more than {_duration(stale_after)} ago"
    if plan.source_fingerprint is not None and request_gate.fingerprint(ws, plan.job_name) != plan.source_fingerprint:
        return "its source changed since it was computed"
    return None


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def list_requests(
    ws: Workspace,
    scope: Scope = "mine",
    *,
    status: str | None = None,
    requester: str | None = None,
    approver: str | None = None,
    collection: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    after: Position | None = None,
) -> builtins.list[RequestRow]:
    """Requests, newest first: *mine* (raised by the acting user), *inbox*
    (pending, the acting user may decide and has not), or *all* (admins and
    auditors); narrowed by the filters given. *approver*: requests that
    user may decide now. *after*: the (created_at, id) of the last request of
    the previous page, for the next one (keyset pagination)."""
    if scope not in SCOPES:
        raise ConfigError(f"{scope!r} is not a scope of requests; the scopes are {', '.join(SCOPES)}", field="scope")
    if scope == "all":
        authz.require_any(ws, (Role.ADMIN, Role.AUDITOR), "list every request")
    elif scope == "inbox":
        authz.require(ws, Role.APPROVER, "decide requests")
    me = acting_name(ws)
    states = None if status is None else [status]
    if scope == "inbox":
        if status not in (None, "pending"):
            return []
        states = ["pending"]
    with ws.db.session() as session:
        found = RequestRepository(session).list(
            states=states, requester=me if scope == "mine" else requester, collection=collection,
            since=since, until=until, limit=None if scope == "inbox" or approver else limit, after=after,
        )
    if scope == "inbox" or approver is not None:
        deciders = _may_decide(ws, found)  # once for the whole list: it reads every trail
        if scope == "inbox":
            found = [r for r in found if me in deciders.get(r.id, set())]
        if approver is not None:
            found = [r for r in found if approver in deciders.get(r.id, set())]
    return found[:limit]


def of_run(ws: Workspace, run_id: int) -> RequestRow | None:
    """The request raised for run *run_id* (the run it gates, or the held run it releases), if any."""
    authz.require_any(ws, tuple(Role), "read requests")
    with ws.db.session() as session:
        return RequestRepository(session).for_run(run_id)


def inbox_count(ws: Workspace) -> int:
    """How many pending requests wait for the acting user's decision (0 for a
    principal that does not hold the approver role)."""
    if not authz.rights(ws).has(Role.APPROVER):
        return 0
    return len(list_requests(ws, "inbox", limit=10_000))


def _may_decide(ws: Workspace, found: builtins.list[RequestRow]) -> dict[int, set[str]]:
    """Who may decide each pending request of *found* now, and has not yet."""
    routes: dict[tuple[str, ...], Routing] = {}
    result: dict[int, set[str]] = {}
    with ws.db.session() as session:
        repo = RequestRepository(session)
        everyone = people(repo.people())
        trails = repo.trails([r.id for r in found if r.state == "pending"])
    for request in found:
        if request.id not in trails:
            continue
        route = routes.get(request.stores)
        if route is None:
            route = routes[request.stores] = routing(ws, request.stores)
        status = fold([to_decision(row) for row in trails[request.id]], request.required_approvals)
        who = eligible(
            route, everyone, requester=request.requested_by,
            rerouted_to=status.rerouted_to, escalation_step=status.escalation_step,
        )
        result[request.id] = set(who - status.decided_by)
    return result


@dataclass(frozen=True)
class MemberChoice:
    """One member value a group's change adds or removes, which an approver
    may leave out on its own: *exclusion* is what to send in ``exclude``."""

    op: str
    member: str
    exclusion: str


MEMBER_CHOICES_SHOWN = 200
"""A group's change with more member values than this is approved or left out whole on a page."""


def member_choices(change: Change, limit: int = MEMBER_CHOICES_SHOWN) -> builtins.list[MemberChoice]:
    """The member values of a group's change an approver can leave out one
    by one (``GROUP_DN;MEMBER_DN``), or none when the change touches no
    member attribute or more than *limit* values."""
    found = [
        MemberChoice(mod.op.value, value, f"{change.dn}{MEMBER_SEPARATOR}{value}")
        for mod in change.mods if mod.attribute.lower() in MEMBER_ATTRIBUTES
        for value in mod.values
    ]
    return found if len(found) <= limit else []
