"""Safety limits: does a plan change more than its job allows?

A job may cap what one run does (``limits``): creates, removals of objects
missing from the source (deletes, disables and moves to a container), and
the share of the objects in scope a run changes. A run over a limit is
*held*: it writes nothing and its plan waits for someone to release it.

Pure: it looks at the sizes of a finished plan, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from idsync.domain.definitions import Limits


@dataclass(frozen=True, slots=True)
class PlanSize:
    """How much a plan changes.

    ``creates`` new objects; ``removals`` objects missing from the source that
    are deleted, disabled or moved away; ``changed`` objects already in scope
    that change at all (updates, renames and removals); ``scope`` the objects
    in the job's scope before the run.
    """

    creates: int = 0
    removals: int = 0
    changed: int = 0
    scope: int = 0

    @property
    def changed_percent(self) -> float:
        """Share of the scope that changes, in percent (0 for an empty scope,
        where nothing existing can change)."""
        return 100.0 * self.changed / self.scope if self.scope else 0.0


def _n(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def exceeded(limits: Limits | None, size: PlanSize) -> list[str]:
    """Each limit *size* exceeds, as a sentence (empty when within every limit)."""
    if limits is None:
        return []
    reasons: list[str] = []
    if limits.max_creates is not None and size.creates > limits.max_creates:
        reasons.append(f"{size.creates:,} creates exceed max_creates {limits.max_creates:,}")
    if limits.max_deletes is not None and size.removals > limits.max_deletes:
        # Disables and moves of missing objects count as deletes: each takes an object away.
        reasons.append(f"{size.removals:,} deletes exceed max_deletes {limits.max_deletes:,}")
    if limits.max_changed_percent is not None and size.changed_percent > limits.max_changed_percent:
        reasons.append(
            f"{size.changed:,} of {size.scope:,} object{'' if size.scope == 1 else 's'} in scope change ({size.changed_percent:.1f}%), "
            f"over max_changed_percent {_n(limits.max_changed_percent)}"
        )
    return reasons


def hold_reason(limits: Limits | None, size: PlanSize) -> str | None:
    """Why a run with this plan is held (one line), or None when it may proceed."""
    reasons = exceeded(limits, size)
    return "held: " + "; ".join(reasons) if reasons else None
