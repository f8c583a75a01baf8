"""The Requests section [S7.3]: inbox, mine and all; a request's page with
its plans' changes, staleness, eligible approvers and decision trail; and
the forms that decide it (approve all or part, deny with a reason,
re-route, comment, cancel).

Approving part of a request: untick kinds of change (only creates, say),
or untick objects in the lists of changes; the DNs shown and not ticked are
sent as excluded. The approval that completes the number required executes
the request at once; the page then goes to the run's report.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from idsync.api.auth import api_state
from idsync.domain.changes import Change, ChangeOp
from idsync.errors import ConfigError, StateConflictError
from idsync.portal.web import PortalRoute, Posted, Viewer, Viewing, render, see_other
from idsync.services import history, requests
from idsync.services.requests import RequestDetail
from idsync.services.workspace import Workspace

router = APIRouter(route_class=PortalRoute)

CHANGES_SHOWN = 200
"""Changes listed per plan on a request's page; the plan's page lists them all."""
OP_ORDER = (ChangeOp.DELETE, ChangeOp.DISABLE, ChangeOp.MOVE, ChangeOp.UPDATE, ChangeOp.CREATE)
"""Deletes first: what an approver most needs to see."""
TABS = ("inbox", "mine", "all")
STATES = ("pending", "approved", "executed", "denied", "expired", "cancelled")
DONE = {
    "approved": "Your approval is recorded.",
    "denied": "The request is denied.",
    "rerouted": "The request is re-routed.",
    "commented": "Your comment is added.",
    "cancelled": "The request is cancelled.",
}


@dataclass(frozen=True)
class PlanChanges:
    """The changes of one plan of a request, as its page lists them."""

    plan_id: int
    changes: list[Change]
    more: bool


def _tabs(who: Viewer) -> list[str]:
    shown = []
    if who.has("approver"):
        shown.append("inbox")
    shown.append("mine")
    if who.has("admin") or who.has("auditor"):
        shown.append("all")
    return shown


@router.get("/requests")
def list_requests(
    request: Request, who: Viewing, tab: str | None = None, status: str = "", collection: str = ""
) -> Response:
    tabs = _tabs(who)
    tab = tab or tabs[0]
    if tab not in TABS:
        raise ConfigError(f"{tab!r} is not a tab of requests; the tabs are {', '.join(TABS)}", field="tab")
    found = requests.list_requests(
        who.ws, tab, status=status or None, collection=collection.strip() or None, limit=200  # type: ignore[arg-type]
    )
    return render(request, "requests.html", who, tab=tab, tabs=tabs, found=found, states=STATES,
                  status_filter=status, collection=collection)


def _changes(ws: Workspace, plan_id: int) -> PlanChanges:
    shown: list[Change] = []
    for op in OP_ORDER:
        shown.extend(history.plan_changes(ws, plan_id, op=op, limit=CHANGES_SHOWN + 1 - len(shown)))
        if len(shown) > CHANGES_SHOWN:
            break
    return PlanChanges(plan_id, shown[:CHANGES_SHOWN], len(shown) > CHANGES_SHOWN)


def _page(request: Request, who: Viewer, request_id: int, *, status: int = 200, message: str | None = None,
          done: str | None = None) -> Response:
    detail: RequestDetail = requests.get(who.ws, request_id)
    changes = {p.plan_id: _changes(who.ws, p.plan_id) for p in detail.plans if p.plan_id is not None}
    pending = detail.request.state == "pending"
    return render(
        request, "request.html", who, status=status, detail=detail, changes=changes, message=message,
        done=DONE.get(done or ""), ops=[op.value for op in ChangeOp],
        may_decide=pending and who.has("approver") and who.user in detail.eligible,
        member_choices=requests.member_choices,
        may_comment=who.has("approver") or who.has("operator"),
        may_cancel=pending and detail.request.requested_by == who.user,
    )


@router.get("/requests/{request_id}")
def show_request(request: Request, who: Viewing, request_id: int, done: str | None = None) -> Response:
    return _page(request, who, request_id, done=done)


def _refused(request: Request, who: Viewer, request_id: int, exc: ConfigError | StateConflictError) -> Response:
    """The request's page again, saying why the form was refused."""
    text = exc.message + (f" ({exc.hint})" if exc.hint else "")
    return _page(request, who, request_id, status=409 if isinstance(exc, StateConflictError) else 422, message=text)


@router.post("/requests/{request_id}/approve")
def approve(request: Request, who: Viewing, form: Posted, request_id: int) -> Response:
    ticked = set(form.all("kinds"))
    kinds = None if ticked >= {op.value for op in ChangeOp} else sorted(ticked)
    keep = set(form.all("keep"))
    exclude = [dn for dn in form.all("shown") if dn not in keep]
    background = api_state(request).background
    try:
        decided = requests.approve(
            who.ws, request_id, kinds=kinds, exclude=exclude, comment=form.get("comment"),
            runtime=background.runtime, hand_off=background.executor.hand_off,
        )
    except (ConfigError, StateConflictError) as exc:
        return _refused(request, who, request_id, exc)
    if decided.run is not None:
        return see_other(f"/runs/{decided.run.id}")
    return see_other(f"/requests/{request_id}?done=approved")


@router.post("/requests/{request_id}/deny")
def deny(request: Request, who: Viewing, form: Posted, request_id: int) -> Response:
    reason = form.get("reason").strip()
    if not reason:
        return _page(request, who, request_id, status=422, message="a denial needs a reason: say why in Reason")
    try:
        requests.deny(who.ws, request_id, reason)
    except (ConfigError, StateConflictError) as exc:
        return _refused(request, who, request_id, exc)
    return see_other(f"/requests/{request_id}?done=denied")


@router.post("/requests/{request_id}/reroute")
def reroute(request: Request, who: Viewing, form: Posted, request_id: int) -> Response:
    to = form.get("to").strip()
    if not to:
        return _page(request, who, request_id, status=422, message="name the user who is to decide instead")
    try:
        requests.reroute(who.ws, request_id, to, form.get("reason"))
    except (ConfigError, StateConflictError) as exc:
        return _refused(request, who, request_id, exc)
    return see_other(f"/requests/{request_id}?done=rerouted")


@router.post("/requests/{request_id}/comment")
def comment(request: Request, who: Viewing, form: Posted, request_id: int) -> Response:
    try:
        requests.comment(who.ws, request_id, form.get("text"))
    except (ConfigError, StateConflictError) as exc:
        return _refused(request, who, request_id, exc)
    return see_other(f"/requests/{request_id}?done=commented")


@router.post("/requests/{request_id}/cancel")
def cancel(request: Request, who: Viewing, form: Posted, request_id: int) -> Response:
    try:
        requests.cancel(who.ws, request_id, form.get("reason"))
    except (ConfigError, StateConflictError) as exc:
        return _refused(request, who, request_id, exc)
    return see_other(f"/requests/{request_id}?done=cancelled")

