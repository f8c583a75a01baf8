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


@dataclass(frozen=True)
class JobOutcome:
    """One job of a collection run: its end state, its counts and its fatal cause."""

    job: str
    state: str
    counts: Counts
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
