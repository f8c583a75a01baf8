"""Run outcomes: states, counts and the record errors of a run."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, fields


class RunState(enum.StrEnum):
    """Where a run is in its life.

    ``completed_with_errors``: the run finished but some records failed;
    ``failed``: a fatal error stopped it (the changes made before stay);
    ``held``: it changed nothing and waits for a decision;
    ``queued``: it waits for the running run of the same collection to end;
    ``skipped``: it never started (overlap, or an earlier job of its
    collection failed), the reason is recorded; ``missed``: scheduled runs
    that did not start because no scheduler was running.
    ``awaiting_approval``: its plans are computed and a workflow request
    waits for approvers; it then runs, or ends ``denied``, ``expired`` or
    ``cancelled`` without changing anything.
    """

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    HELD = "held"
    TERMINATED = "terminated"
    SKIPPED = "skipped"
    MISSED = "missed"
    AWAITING_APPROVAL = "awaiting_approval"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (RunState.PENDING, RunState.QUEUED, RunState.RUNNING, RunState.AWAITING_APPROVAL)


@dataclass(slots=True)
class Counts:
    """What a run (or a plan) did, per kind of outcome."""

    read: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    disabled: int = 0
    moved: int = 0
    unchanged: int = 0
    skipped: int = 0
    conflicts: int = 0
    errors: int = 0
    not_approved: int = 0  # changes of an approved plan that its approvers left out

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted + self.disabled + self.moved

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        """The counts that are not zero, for a log line: ``read 3, created 2``."""
        return ", ".join(f"{k} {v}" for k, v in self.to_dict().items() if v)

    @classmethod
    def from_dict(cls, data: dict[str, int] | None) -> Counts:
        names = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in (data or {}).items() if k in names})

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True, slots=True)
class ErrorItem:
    """One record error of a run: where it happened and why."""

    message: str
    key: str | None = None
    attribute: str | None = None
    line: int | None = None
    dn: str | None = None
