"""Review your changes, on the command line: show what would be saved, then ask.

Nothing is saved before the user confirms. Scripts pass ``--yes``; without
a terminal to ask in and without ``--yes``, the command refuses in one line
rather than guessing.
"""

from __future__ import annotations

import sys

import typer

from idsync.cli.output import console
from idsync.errors import ConfigError
from idsync.services.review import Review

NOT_CONFIRMED = (
    "nothing saved: the changes need a confirmation; run the command in a terminal "
    "to review them, or pass --yes"
)


def show(review: Review) -> None:
    for line in review.lines():
        console.print(line, markup=False, soft_wrap=True)


def confirmed(review: Review, *, yes: bool, json: bool) -> bool:
    """Show the review (unless *json*) and ask; True when the changes are to be saved.

    An unchanged definition needs no question: there is nothing to save."""
    if not json:
        show(review)
    return ask_to_save(review, yes=yes, json=json)


def ask_to_save(review: Review, *, yes: bool, json: bool) -> bool:
    """Ask whether to save the changes of *review*, already shown; True to save.

    Without a terminal (or with *json*), only *yes* saves: a script never
    hangs on a question; no changes, nothing to save."""
    if not review.has_changes:
        return False
    if yes:
        return True
    if json or not sys.stdin.isatty():
        raise ConfigError(NOT_CONFIRMED)
    if typer.confirm("Save these changes?", default=False):
        return True
    console.print("nothing saved", markup=False)
    raise typer.Exit(1)
