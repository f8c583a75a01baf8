"""What a workflow request's messages say: to its approvers, and to its requester.

A :class:`RequestNotice` is a frozen snapshot of one request at one event
(it awaits approval, a reminder, its outcome), built by the service that
queues the messages and rendered by :func:`render_request`. Like
:class:`~idsync.notify.events.RunEvent`, it holds no database object, so the
messages are tested without a store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from idsync.domain.results import Counts
from idsync.notify.events import ChangedObject
from idsync.notify.render import Message, render_parts

RequestEvent = Literal["awaiting", "reminder", "approved", "denied", "expired", "cancelled", "executed"]
REQUEST_EVENTS: tuple[str, ...] = ("awaiting", "reminder", "approved", "denied", "expired", "cancelled", "executed")

TO_APPROVERS: frozenset[str] = frozenset({"awaiting", "reminder"})
"""Events told to the approvers; the others are the outcome, told to the requester."""


@dataclass(frozen=True)
class PlanSummary:
    """One job's plan in a request: what it would change, and whether it went stale."""

    job: str
    plan_id: int | None
    counts: Counts
    stale: str | None = None
    """Why the plan may no longer be what a run would do (too old, its source changed)."""


@dataclass(frozen=True)
class RequestNotice:
    """A request at the moment a message is written about it.

    ``changes`` are the first changes of its plans (the deletes first), and
    ``deletes`` every DN its plans delete, for requests raised by a safety
    limit (an approver of a held run sees each delete, the rest summarised).
    ``applied`` is what the approved run did, once it ran; ``not_approved``
    how many changes the approvers left out.
    """

    request_id: int
    event: RequestEvent
    collection: str
    kind: str
    reason: str
    requested_by: str
    created_at: Any
    expires_at: Any
    required: int
    approvals: tuple[str, ...] = ()
    plans: tuple[PlanSummary, ...] = ()
    changes: tuple[ChangedObject, ...] = ()
    changes_total: int = 0
    deletes: tuple[str, ...] = ()
    decided_by: str | None = None
    comment: str | None = None
    applied: Counts | None = None
    run_state: str | None = None
    not_approved: int = 0
    escalation_step: int = 0
    link: str | None = None

    @property
    def planned(self) -> Counts:
        """What the request's plans would change together."""
        total = Counts()
        for plan in self.plans:
            total.add(plan.counts)
        return total

    @property
    def stale(self) -> tuple[PlanSummary, ...]:
        return tuple(plan for plan in self.plans if plan.stale)


def render_request(notice: RequestNotice, *, templates_dir: Path | None = None) -> Message:
    """The message for *notice*: ``request.subject.txt``, ``request.body.txt``
    and ``request.body.html`` (overridable like the run messages)."""
    planned = notice.planned
    context: dict[str, Any] = {
        "r": notice,
        "event": notice.event,
        "planned": planned,
        "planned_words": _counts_in_words(planned),
        "applied_words": _counts_in_words(notice.applied) if notice.applied is not None else None,
        "to_approvers": notice.event in TO_APPROVERS,
        "more_changes": max(notice.changes_total - len(notice.changes), 0),
        "show_command": f"idsync request show {notice.request_id}",
        "approve_command": f"idsync request approve {notice.request_id}",
        "deny_command": f'idsync request deny {notice.request_id} --reason "..."',
    }
    return render_parts("request", context, templates_dir)


def _counts_in_words(counts: Counts) -> str:
    """``25 created, 3 deleted``; ``no change`` when there is none."""
    pairs = [
        ("created", counts.created), ("updated", counts.updated), ("deleted", counts.deleted),
        ("disabled", counts.disabled), ("moved", counts.moved),
    ]
    words = [f"{number} {name}" for name, number in pairs if number]
    return ", ".join(words) if words else "no change"
