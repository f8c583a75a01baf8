"""An identity store's workflow settings [S7.1]: which runs need approval, by whom.

A workflow is part of its store's definition (``workflow:``). It never
approves by itself: a workflow that covers any kind of run must name at
least one approver (a user or a directory group); whether those approvers
exist and hold the approver role is checked when the store is saved, since
only the database knows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from idsync.domain.base import DefinitionModel, Name
from idsync.domain.durations import Duration

RequestKind = Literal["manual", "schedule", "held"]
"""Why a request was raised: a manual run, a schedule's occurrence, or a run held by a safety limit."""

DEFAULT_EXPIRY = timedelta(days=7)
DEFAULT_STALE_AFTER = timedelta(days=1)
MOST_APPROVALS = 10


class Escalation(DefinitionModel):
    """After *after* without a decision, a pending request is also routed to
    these approvers, and each approver is reminded once."""

    after: Duration = Field(description="time without a decision before escalating, e.g. 1d or 4h")
    approvers: list[Name] = Field(default_factory=list, description="idsync users the request is escalated to")
    approver_group: str | None = Field(
        default=None, description="DN of a directory group of this store whose members it is escalated to"
    )

    @model_validator(mode="after")
    def _someone(self) -> Escalation:
        if not self.approvers and not self.approver_group:
            raise ValueError("escalation needs approvers or approver_group: whom to escalate to")
        return self


class WorkflowSettings(DefinitionModel):
    """Which runs of the store's collections need approval, who approves, how many, for how long."""

    manual: bool = Field(default=False, description="manual runs need approval")
    scheduled: bool = Field(default=False, description="scheduled runs need approval")
    held: bool = Field(default=False, description="runs held by a safety limit become requests")
    approvers: list[Name] = Field(default_factory=list, description="idsync users who may approve")
    approver_group: str | None = Field(
        default=None, description="DN of a directory group of this store whose members may approve"
    )
    required_approvals: int = Field(
        default=1, ge=1, le=MOST_APPROVALS, description="approvals needed, from distinct people"
    )
    expires_after: Duration = Field(default=DEFAULT_EXPIRY, description="a request not decided by then expires, never runs")
    stale_after: Duration = Field(
        default=DEFAULT_STALE_AFTER, description="a request's plans older than this are flagged stale"
    )
    escalation: Escalation | None = None

    @property
    def enabled(self) -> bool:
        """Whether any kind of run needs approval."""
        return self.manual or self.scheduled or self.held

    def covers(self, kind: RequestKind) -> bool:
        """Whether a run of *kind* needs approval under these settings."""
        return {"manual": self.manual, "schedule": self.scheduled, "held": self.held}[kind]

    @model_validator(mode="after")
    def _fail_closed(self) -> WorkflowSettings:
        if self.enabled and not self.approvers and not self.approver_group:
            raise ValueError(
                "a workflow that requires approval needs approvers or approver_group: "
                "with nobody to approve, nothing would ever run"
            )
        if self.escalation is not None and self.escalation.after >= self.expires_after:
            raise ValueError("escalation.after must be shorter than expires_after: the request would expire first")
        return self
