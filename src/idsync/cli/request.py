"""``idsync request``: the Requests section: list, show and decide workflow requests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer

from idsync.cli.changes_view import print_changes
from idsync.cli.common import workspace
from idsync.cli.job import EXIT_FOR_STATE
from idsync.cli.output import FormatOption, JsonOption, console, print_json, state_text, table, when
from idsync.domain.changes import ChangeOp
from idsync.services import history, requests
from idsync.services.requests import Decided, RequestDetail

app = typer.Typer(help="Workflow requests: runs waiting for approval, and the decisions on them.", no_args_is_help=True)

UtcOption = typer.Option(False, "--utc", help="Show times in UTC instead of this computer's zone.")


def _moment(text: str | None, option: str) -> dt.datetime | None:
    """A date or date-time typed by a user; in this computer's zone unless it has an offset."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date: give YYYY-MM-DD or YYYY-MM-DDTHH:MM", param_hint=option) from None
    return value.astimezone() if value.tzinfo is None else value


@app.command("list")
def list_(
    mine: bool = typer.Option(False, "--mine", help="Requests you raised (the default)."),
    inbox: bool = typer.Option(False, "--inbox", help="Pending requests waiting for your decision."),
    all_: bool = typer.Option(False, "--all", help="Every request (administrators and auditors)."),
    status: str | None = typer.Option(None, "--status", help="Only requests in this state: pending, approved, executed, denied, expired, cancelled."),
    requester: str | None = typer.Option(None, "--requester", help="Only requests raised by this user (or 'schedule NAME')."),
    approver: str | None = typer.Option(None, "--approver", help="Only pending requests this user may decide now."),
    collection: str | None = typer.Option(None, "--collection", help="Only requests of this collection."),
    since: str | None = typer.Option(None, "--since", help="Only requests raised at or after this date (YYYY-MM-DD[THH:MM])."),
    until: str | None = typer.Option(None, "--until", help="Only requests raised before this date (YYYY-MM-DD[THH:MM])."),
    limit: int = typer.Option(100, "--limit", min=1, help="How many requests to list."),
    utc: bool = UtcOption,
    fmt: str = FormatOption,
    json: bool = JsonOption,
) -> None:
    """List requests, newest first: yours (--mine, the default), those waiting for your decision (--inbox), or all (--all)."""
    if sum((mine, inbox, all_)) > 1:
        raise typer.BadParameter("give one of --mine, --inbox and --all")
    scope: requests.Scope = "inbox" if inbox else "all" if all_ else "mine"
    found = requests.list_requests(
        workspace(), scope, status=status, requester=requester, approver=approver, collection=collection,
        since=_moment(since, "--since"), until=_moment(until, "--until"), limit=limit,
    )
    if json:
        print_json(found)
        return
    if not found:
        console.print({"inbox": "no request waits for your decision", "all": "no request",
                       "mine": "you raised no request"}[scope], markup=False)
        return
    table(None, ["id", "state", "collection", "kind", "requested by", "raised", "expires", "outcome"], [
        (r.id, state_text(r.state), r.collection_name, r.kind, r.requested_by, when(r.created_at, utc),
         when(r.expires_at, utc) if r.state == "pending" else "", r.outcome or "")
        for r in found
    ], fmt=fmt)


@app.command("show")
def show(
    request_id: int = typer.Argument(..., help="The request to show."),
    changes: int = typer.Option(20, "--changes", min=0, help="How many changes of each plan to show (deletes first)."),
    utc: bool = UtcOption,
    json: bool = JsonOption,
) -> None:
    """Show a request: what it would apply (each plan's counts and changes, stale plans flagged), who may decide it, and its decision trail."""
    ws = workspace()
    detail = requests.get(ws, request_id)
    if json:
        print_json(detail)
        return
    _print_detail(ws, detail, changes, utc)


def _print_detail(ws: Any, detail: RequestDetail, changes: int, utc: bool) -> None:
    r = detail.request
    console.print(f"request {r.id}: [bold]{r.state}[/bold]", highlight=False)
    rows = [
        ("collection", r.collection_name), ("stores", ", ".join(r.stores)), ("kind", r.kind), ("reason", r.reason),
        ("requested by", r.requested_by), ("raised", when(r.created_at, utc)), ("expires", when(r.expires_at, utc)),
        ("approvals", f"{len(detail.status.approvals)} of {r.required_approvals}"
                      + (f" ({', '.join(sorted(detail.status.approvers))})" if detail.status.approvers else "")),
        ("approved so far", detail.applies if detail.status.approvals else "nothing yet"),
        ("may decide now", (", ".join(detail.eligible) or "nobody") if r.state == "pending" else f"nobody: it is {r.state}"),
        ("run", str(r.run_id)),
    ]
    if r.outcome:
        rows.append(("outcome", r.outcome))
    for label, value in rows:
        console.print(f"  {label + ':':17}{value}", markup=False, soft_wrap=True)
    for plan in detail.plans:
        counts = plan.counts.summary() if plan.counts is not None else ""
        what = f"plan {plan.plan_id}" if plan.plan_id is not None else "no plan (it could not be computed: see the run's log)"
        console.print(f"\njob {plan.job_name}: {what}; {counts or 'no change'}", markup=False, soft_wrap=True)
        if plan.stale:
            console.print(f"  [yellow]stale:[/yellow] {plan.stale}; a new preview gives fresh plans (idsync request repreview {r.id})", soft_wrap=True)
        if plan.plan_id is not None and changes:
            shown = print_changes(history.plan_changes(ws, plan.plan_id, op=ChangeOp.DELETE, limit=changes), changes)
            if shown < changes:
                rest = (c for c in history.plan_changes(ws, plan.plan_id, limit=changes + shown) if c.op is not ChangeOp.DELETE)
                shown += print_changes(rest, changes - shown)
            if plan.change_count > shown:
                console.print(f"  … {plan.change_count - shown} more: idsync plan show {plan.plan_id} --all", markup=False)
    console.print("\ndecision trail:")
    table(None, ["when", "who", "action", "comment", "detail"], [
        (when(row.at, utc), row.actor, row.action, row.comment, _detail_text(row.detail)) for row in detail.trail
    ])


def _detail_text(detail: dict[str, Any]) -> str:
    parts = []
    if detail.get("kinds"):
        parts.append("only " + ",".join(detail["kinds"]))
    if detail.get("excluded"):
        parts.append("excluding " + "; ".join(detail["excluded"]))
    if detail.get("to_user"):
        parts.append(f"to {detail['to_user']}")
    parts.extend(f"{k}: {v}" for k, v in detail.items() if k not in ("kinds", "excluded", "to_user") and v)
    return ", ".join(parts)


@app.command("approve")
def approve(
    request_id: int = typer.Argument(..., help="The request to approve."),
    only: str | None = typer.Option(None, "--only", help="Approve only these kinds of change, e.g. create,update (the rest is not applied)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Leave out the change to this DN, or one member of a group as GROUP_DN;MEMBER_DN (repeat for more)."),
    comment: str = typer.Option("", "--comment", help="A comment kept with your approval."),
    no_send: bool = typer.Option(
        False, "--no-send", help="Leave the run's notifications in the outbox for a scheduler or an outbox sender."
    ),
    json: bool = JsonOption,
) -> None:
    """Approve a request, all of it or part of it; the approval that completes the number required runs it at once, applying exactly the approved plans, and delivers the run's notifications."""
    kinds = [k for k in only.split(",") if k.strip()] if only is not None else None
    ws = workspace()
    decided = requests.approve(ws, request_id, kinds=kinds, exclude=exclude, comment=comment)
    if decided.run is not None and not no_send:
        from idsync.runtime.node import deliver_run

        delivery = deliver_run(ws, decided.run.id)
        if not json:
            console.print(delivery.summary(), markup=False, soft_wrap=True)
    _print_decided(decided, "approved", json)


@app.command("deny")
def deny(
    request_id: int = typer.Argument(..., help="The request to deny."),
    reason: str = typer.Option(..., "--reason", help="Why (required; the requester is told)."),
    json: bool = JsonOption,
) -> None:
    """Deny a request: it ends, and nothing of it is applied."""
    _print_decided(requests.deny(workspace(), request_id, reason), "denied", json)


@app.command("reroute")
def reroute(
    request_id: int = typer.Argument(..., help="The request to route to another approver."),
    to: str = typer.Option(..., "--to", help="The idsync user (an approver) who may decide it too."),
    reason: str = typer.Option(..., "--reason", help="Why (required)."),
    json: bool = JsonOption,
) -> None:
    """Route a request to another approver too; it stays pending."""
    _print_decided(requests.reroute(workspace(), request_id, to, reason), f"re-routed to {to}", json)


@app.command("comment")
def comment(
    request_id: int = typer.Argument(..., help="The request to comment on."),
    text: str = typer.Argument(..., help="The comment."),
    json: bool = JsonOption,
) -> None:
    """Add a comment to a request's decision trail."""
    _print_decided(requests.comment(workspace(), request_id, text), "commented", json)


@app.command("cancel")
def cancel(
    request_id: int = typer.Argument(..., help="Your request to cancel."),
    reason: str = typer.Option("", "--reason", help="Why (optional)."),
    json: bool = JsonOption,
) -> None:
    """Cancel a request you raised: it ends, and nothing of it is applied."""
    _print_decided(requests.cancel(workspace(), request_id, reason), "cancelled", json)


@app.command("repreview")
def repreview(
    request_id: int = typer.Argument(..., help="The pending request to preview again."),
    json: bool = JsonOption,
) -> None:
    """Compute fresh plans for a pending request (its plans went stale); the approvals given so far no longer count."""
    _print_decided(requests.repreview(workspace(), request_id), "previewed again", json)


def _print_decided(decided: Decided, what: str, json: bool) -> None:
    r = decided.request
    if json:
        print_json(decided)
    else:
        console.print(f"request {r.id} {what}: now {r.state}", markup=False, soft_wrap=True)
        if decided.run is not None:
            run = decided.run
            console.print(
                f"run {run.id} of collection {r.collection_name} {run.state.value}: {run.counts.summary() or 'no change'}"
                + (f"; {run.error}" if run.error else ""),
                markup=False, soft_wrap=True,
            )
            console.print(f"details: idsync run show {run.id}", markup=False)
        elif r.state == "pending":
            console.print(f"it waits for more approvals: idsync request show {r.id}", markup=False)
    if decided.run is not None:
        raise typer.Exit(EXIT_FOR_STATE.get(decided.run.state, 1))
