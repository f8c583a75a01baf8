"""What the notification rules and templates know about a finished run.

A :class:`RunEvent` is a frozen snapshot built once by the code that finishes
a run; the rules decide from it which triggers fire and the templates render
it. Keeping it small and free of database objects lets both stay pure and be
tested without a store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from idsync.domain.results import Counts, ErrorItem

ERRORS_SHOWN = 20
"""How many record errors a message lists; the rest are counted, not shown."""

CHANGES_SHOWN = 20
"""How many changed objects a message lists by default (setting notify_changes_shown)."""


@dataclass(frozen=True)
class ChangedObject:
    """One object a run changed, as a message lists it: what happened to it
    and, per attribute, the change in words (``mail: a@x -> b@x``)."""

    job: str
    op: str
    dn: str
    new_dn: str | None = None
    attributes: tuple[str, ...] = ()
    membership: bool = False
    """An update touching only group member attributes."""


@dataclass(frozen=True)
class HeldJob:
    """A job of the run that wrote nothing and waits for a decision."""

    job: str
    reason: str
    plan_id: int | None


@dataclass(frozen=True)
class JobOutcome:
    """One job of a collection run: its end state, its counts and its fatal cause."""

    job: str
    state: str
    counts: Counts
    error: str | None = None


@dataclass(frozen=True)
class GroupOutcome:
    """One smart group recomputed by a linked update job of the run: ``updated``,
    ``unchanged``, ``refused`` or ``held`` (by a limit), or ``failed``, with the
    members added and removed and why it was not updated."""

    update: str
    group: str
    dn: str
    outcome: str
    added: int = 0
    removed: int = 0
    error: str | None = None


@dataclass(frozen=True)
class RunEvent:
    """A finished collection run as notifications see it.

    ``counts`` is the collection's total; ``errors`` holds at most the first
    :data:`ERRORS_SHOWN` record errors and ``error_total`` how many there were;
    ``error`` is the fatal cause of a failed run; ``missed`` counts scheduled
    occurrences that did not start; ``link`` points at the run in the portal
    (absent when no base URL is set).
    """

    run_id: int
    collection: str
    state: str
    trigger: str
    started_at: datetime | None
    finished_at: datetime | None
    counts: Counts
    jobs: tuple[JobOutcome, ...]
    errors: tuple[ErrorItem, ...]
    error_total: int
    error: str | None
    missed: int = 0
    link: str | None = None
    requested_by: str | None = None
    changes: tuple[ChangedObject, ...] = ()
    """The first changed objects (at most the configured number)."""
    changes_total: int = 0
    """How many objects the run changed, listed or not."""
    memberships: int = 0
    """Updates that changed group memberships only (counted apart from the other updates)."""
    held: tuple[HeldJob, ...] = ()
    released_by: int | None = None
    """The job run that applied a held plan and so brought this run to its state."""
    groups: tuple[GroupOutcome, ...] = ()
    """The smart groups the collection's linked update jobs recomputed, after its jobs."""

    @property
    def change_counts(self) -> list[tuple[str, int]]:
        """What changed in the admin's words, the non-zero ones in order:
        created, updated, deleted, disabled, moved, membership changes."""
        c = self.counts
        memberships = min(self.memberships, c.updated)
        pairs = [
            ("created", c.created), ("updated", c.updated - memberships), ("deleted", c.deleted),
            ("disabled", c.disabled), ("moved", c.moved), ("membership", memberships),
        ]
        return [(name, number) for name, number in pairs if number]

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish; None when the run never started or has no end."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())

    @property
    def records_changed(self) -> int:
        """Records created, updated, deleted, disabled or moved (a changed group membership is an update)."""
        return self.counts.changed

    @property
    def record_errors(self) -> int:
        """Record-level problems: errors plus conflicts (the listed error items include both)."""
        return max(self.counts.errors + self.counts.conflicts, self.error_total)
