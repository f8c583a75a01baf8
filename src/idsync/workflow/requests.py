"""A request's life as a pure state machine over its decision trail [S7.2, S7.4].

::

    pending ──approve × required──▶ approved ──execute──▶ executed
       │ ╲──deny──▶ denied
       │  ╲─cancel (requester)──▶ cancelled
       │   ╲─expire (system, at/after expires_at)──▶ expired
       └── comment, reroute, escalate, repreview: still pending

The trail is the truth; a request's ``state`` column only caches
:func:`fold` of it. :func:`decide` checks one new decision against the
trail and returns the state it leads to, or raises:

- :class:`~idsync.errors.StateConflictError` on a closed request, on an
  expired one (at or after its expiry, even before the sweep marked it),
  or an action the state does not allow;
- :class:`~idsync.errors.PermissionDeniedError` when the actor may not:
  approving their own request, approving twice in one round, not being an
  eligible approver, re-routing to the requester, cancelling someone
  else's request.

A *repreview* starts a new round: approvals given before the newest one do
not count, since they approved other plans. The requester never counts
toward the approvals required.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, get_args

from idsync.domain.changes import ChangeOp
from idsync.errors import ConfigError, PermissionDeniedError, StateConflictError

RequestState = Literal["pending", "approved", "executed", "denied", "expired", "cancelled"]
REQUEST_STATES: tuple[str, ...] = get_args(RequestState)
CLOSED_STATES: frozenset[str] = frozenset({"executed", "denied", "expired", "cancelled"})

Action = Literal["approve", "deny", "reroute", "comment", "cancel", "expire", "escalate", "repreview", "execute"]
ACTIONS: tuple[str, ...] = get_args(Action)
SYSTEM_ACTIONS: frozenset[str] = frozenset({"expire", "escalate", "execute"})
"""Actions only idsync takes on its own (the sweep, the execution)."""


@dataclass(frozen=True)
class Decision:
    """One entry of a request's trail: who did what, when, and what it covered.

    ``kinds`` (approve only): the kinds of change approved, None for all;
    ``excluded`` (approve only): normalised DNs left out; ``to_user``
    (reroute only): whom the request was routed to.
    """

    actor: str
    action: Action
    at: datetime
    comment: str = ""
    kinds: frozenset[ChangeOp] | None = None
    excluded: frozenset[str] = frozenset()
    to_user: str | None = None

    def detail(self) -> dict[str, Any]:
        """What was decided, as stored in the trail's ``detail`` (sorted: hashed as JSON)."""
        found: dict[str, Any] = {}
        if self.kinds is not None:
            found["kinds"] = sorted(kind.value for kind in self.kinds)
        if self.excluded:
            found["excluded"] = sorted(self.excluded)
        if self.to_user is not None:
            found["to_user"] = self.to_user
        return found

    @classmethod
    def from_detail(
        cls, *, actor: str, action: str, at: datetime, comment: str, detail: Mapping[str, Any] | None
    ) -> Decision:
        """A decision as read back from the trail."""
        if action not in ACTIONS:
            raise ValueError(f"unknown decision action {action!r}")
        data = detail or {}
        kinds = data.get("kinds")
        return cls(
            actor=actor,
            action=action,  # type: ignore[arg-type]
            at=at,
            comment=comment,
            kinds=frozenset(ChangeOp(k) for k in kinds) if kinds is not None else None,
            excluded=frozenset(str(dn) for dn in data.get("excluded", ())),
            to_user=data.get("to_user"),
        )


@dataclass(frozen=True)
class RequestFacts:
    """What a request was raised with and never changes: its number, who asked,
    how many approvals it needs, when it expires."""

    id: int
    requester: str
    required_approvals: int
    expires_at: datetime


@dataclass(frozen=True)
class Status:
    """A request's state as its trail says: the state, the approvals of the
    current round (since the newest repreview), who it was re-routed to,
    how far it was escalated, and the decision that closed it."""

    state: RequestState = "pending"
    approvals: tuple[Decision, ...] = ()
    rerouted_to: frozenset[str] = frozenset()
    escalation_step: int = 0
    closed_by: Decision | None = None
    decided_by: frozenset[str] = field(default_factory=frozenset)
    """Who approved, denied or re-routed in the current round (the inbox leaves them out)."""

    @property
    def approvers(self) -> frozenset[str]:
        """The distinct people whose approval counts in the current round."""
        return frozenset(d.actor for d in self.approvals)

    @property
    def closed(self) -> bool:
        return self.state in CLOSED_STATES


def fold(trail: Sequence[Decision], required_approvals: int) -> Status:
    """The state *trail* (in order) leads to; the trail is trusted (each entry
    was checked by :func:`decide` when it was appended)."""
    status = Status()
    for decision in trail:
        status = _apply(status, decision, required_approvals)
    return status


def decide(
    facts: RequestFacts, trail: Sequence[Decision], decision: Decision, eligible: frozenset[str]
) -> Status:
    """The status *decision* leads to, after *trail*; raises when it is not
    allowed. *eligible*: who may approve, deny or re-route now (see
    :func:`idsync.workflow.approvers.eligible`); the requester never is."""
    status = fold(trail, facts.required_approvals)
    _check(facts, status, decision, eligible)
    return _apply(status, decision, facts.required_approvals)


def _check(facts: RequestFacts, status: Status, decision: Decision, eligible: frozenset[str]) -> None:
    label = f"request {facts.id}"
    action, actor = decision.action, decision.actor
    if status.closed:
        raise StateConflictError(
            f"{label} is {status.state}: no decision can be made on it any more",
            hint="raise a new request by running the collection again" if status.state != "executed" else None,
        )
    if status.state == "approved":
        if action in ("execute", "comment"):
            return
        raise StateConflictError(f"{label} is approved and being executed: it cannot be {_past(action)} now")
    # pending from here on
    if action == "execute":
        raise StateConflictError(f"{label} is pending: it cannot be executed before it is approved")
    if action == "expire":
        if decision.at < facts.expires_at:
            raise StateConflictError(f"{label} expires at {_when(facts.expires_at)}, not before")
        return
    if action == "escalate":
        return
    if decision.at >= facts.expires_at:
        raise StateConflictError(
            f"{label} expired at {_when(facts.expires_at)}: it can no longer be {_past(action)}",
            hint="run the collection again to raise a new request",
        )
    if action == "cancel":
        if actor != facts.requester:
            raise PermissionDeniedError(
                f"{label} can be cancelled only by its requester {facts.requester!r}, not {actor!r}",
                hint="deny it instead, with a reason",
            )
        return
    if action in ("comment", "repreview"):
        return
    if action in ("deny", "reroute") and not decision.comment.strip():
        raise ConfigError(f"{label}: a {action} needs a reason", field="reason", hint="say why, in a few words")
    if actor == facts.requester:
        raise PermissionDeniedError(
            f"{actor!r} raised {label} and cannot {action} it: someone else must decide",
            hint="ask one of its approvers",
        )
    if actor not in eligible:
        raise PermissionDeniedError(
            f"{actor!r} is not an approver of {label}", hint="ask one of its approvers, or have it re-routed to you"
        )
    if action == "approve" and actor in status.approvers:
        raise PermissionDeniedError(
            f"{actor!r} has approved {label} already: it needs approvals from "
            f"{facts.required_approvals} distinct people",
            hint="ask another approver",
        )
    if action == "reroute":
        if not decision.to_user:
            raise ConfigError(f"{label}: a re-route needs the user to route it to", field="to")
        if decision.to_user == facts.requester:
            raise PermissionDeniedError(
                f"{label} cannot be re-routed to its requester {facts.requester!r}: nobody approves their own request",
                hint="route it to another approver",
            )


def _apply(status: Status, decision: Decision, required: int) -> Status:
    action = decision.action
    if action == "approve":
        approvals = (*status.approvals, decision)
        approved = len({d.actor for d in approvals}) >= required
        return _with(
            status, state="approved" if approved else "pending", approvals=approvals,
            decided_by=status.decided_by | {decision.actor},
        )
    if action == "reroute" and decision.to_user:
        return _with(
            status, rerouted_to=status.rerouted_to | {decision.to_user}, decided_by=status.decided_by | {decision.actor}
        )
    if action == "escalate":
        return _with(status, escalation_step=status.escalation_step + 1)
    if action == "repreview":
        return _with(status, approvals=(), decided_by=frozenset())
    closing: dict[str, RequestState] = {
        "deny": "denied", "cancel": "cancelled", "expire": "expired", "execute": "executed",
    }
    if action in closing:
        return _with(status, state=closing[action], closed_by=decision)
    return status  # comment


def _with(status: Status, **changes: Any) -> Status:
    return replace(status, **changes)


_PAST = {
    "approve": "approved", "deny": "denied", "reroute": "re-routed", "comment": "commented on",
    "cancel": "cancelled", "expire": "expired", "escalate": "escalated", "repreview": "previewed again",
    "execute": "executed",
}


def _past(action: str) -> str:
    return _PAST.get(action, action)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")
