"""Showing plans to people: counts and per-object attribute diffs."""

from __future__ import annotations

from collections.abc import Iterable

from rich.markup import escape

from idsync.cli.output import console
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.results import Counts
from idsync.services.plan_export import change_rows

_STYLE = {
    ChangeOp.CREATE: "green",
    ChangeOp.UPDATE: "yellow",
    ChangeOp.DELETE: "red",
    ChangeOp.DISABLE: "magenta",
    ChangeOp.MOVE: "cyan",
}


def print_counts(counts: Counts, heading: str) -> None:
    """Every count (changes left out by a partial approval only when there are some)."""
    parts = [
        f"{k.replace('_', ' ')} [bold]{v}[/bold]"
        for k, v in counts.to_dict().items() if k != "not_approved" or v
    ]
    console.print(f"{heading}: " + ", ".join(parts))


def print_changes(changes: Iterable[Change], limit: int | None) -> int:
    """Print each change with its attribute diffs; returns how many were printed."""
    shown = 0
    for change in changes:
        if limit is not None and shown >= limit:
            break
        shown += 1
        style = _STYLE[change.op]
        key = f" (key {escape(change.key)})" if change.key else ""
        console.print(f"[{style}]{change.op.value:8}[/{style}] {escape(change.dn)}{key}")
        for attribute, before, after in change_rows(change):
            if change.op is ChangeOp.CREATE:
                console.print(f"           + {escape(attribute)}: {escape(after)}")
            else:
                console.print(
                    f"           ~ {escape(attribute)}: [red]{escape(before) or '(none)'}[/red] → "
                    f"[green]{escape(after) or '(none)'}[/green]"
                )
    return shown
