"""Applying a plan's changes to a directory, and counting what happened.

Changes are handed to the directory as a stream; the directory pipelines
them (several operations outstanding) and reports one outcome per change.

A plan stored earlier (a preview, an approved request) is applied with
preconditions: before writing, the destination's scope is read once and each
change is compared with what the planner saw. An object that changed in
between is a *conflict*: it is reported and left untouched, so an approved
plan never overwrites a change made after it was computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from idsync.connectors.base import ApplyOutcome
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.dn import normalize_dn
from idsync.domain.entry import Attrs
from idsync.domain.results import Counts, ErrorItem
from idsync.errors import ConflictError

_COUNTERS = {
    ChangeOp.CREATE: "created",
    ChangeOp.UPDATE: "updated",
    ChangeOp.DELETE: "deleted",
    ChangeOp.DISABLE: "disabled",
    ChangeOp.MOVE: "moved",
}


def find_conflict(change: Change, current: Attrs | None) -> str | None:
    """Why *change* no longer fits the object as it is now, or None when it still does.

    *current* holds the object's attributes now (None: it no longer exists).
    """
    if change.op is ChangeOp.CREATE:
        return "an object with this DN was created since the plan was computed" if current is not None else None
    if current is None:
        return "the object was deleted or renamed since the plan was computed"
    for mod in change.mods:
        now = current.get_values(mod.attribute)
        if set(now) != set(mod.before):
            return f"{mod.attribute!r} changed since the plan was computed"
    return None


def without_conflicts(
    changes: Iterable[Change], current: Mapping[str, Attrs], conflicts: list[ApplyOutcome]
) -> Iterator[Change]:
    """The changes that still fit *current* (normalised DN → attrs); the others are
    appended to *conflicts* as outcomes with a ConflictError."""
    for change in changes:
        why = find_conflict(change, current.get(normalize_dn(change.dn)))
        if why is None:
            yield change
        else:
            conflicts.append(
                ApplyOutcome(change, ConflictError(f"{change.dn}: {why}; left untouched", key=change.key))
            )


def count_outcome(outcome: ApplyOutcome, counts: Counts) -> ErrorItem | None:
    """Add *outcome* to *counts*; return the error item to report, if any."""
    error = outcome.error
    if error is None:
        name = _COUNTERS[outcome.change.op]
        setattr(counts, name, getattr(counts, name) + 1)
        return None
    if isinstance(error, ConflictError):
        counts.conflicts += 1
    else:
        counts.errors += 1
    return ErrorItem(
        error.message, key=error.key or outcome.change.key, attribute=error.attribute, dn=outcome.change.dn
    )

