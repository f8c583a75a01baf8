"""Asking questions in a terminal, each answer checked as it is given.

A wrong answer is said to be wrong, in one line, and the same question is
asked again; the answers given before it are kept. Choices among stored
things (jobs, schedules, triggers) are offered as a numbered list: a number
or a name picks one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import typer

from idsync.cli.output import console
from idsync.errors import IdsyncError
from idsync.services.answers import split

T = TypeVar("T")


def ask(question: str, check: Callable[[str], T], default: str | None = None) -> T:
    """The answer to *question*, as *check* returns it; asked again while *check* refuses it."""
    while True:
        text = typer.prompt(question, default=default if default is not None else "", show_default=bool(default))
        try:
            return check(text)
        except (IdsyncError, typer.BadParameter) as exc:
            message = exc.message if isinstance(exc, IdsyncError) else str(exc)
            console.print(f"  not taken: {message}; answer again", markup=False, soft_wrap=True)


def yes_no(question: str, default: bool) -> bool:
    """A yes or no answer (typer asks again until it is one)."""
    return typer.confirm(question, default=default)


def show_choices(heading: str, choices: Sequence[str]) -> None:
    """The numbered list a :func:`pick` answer refers to."""
    console.print(heading, markup=False)
    for number, choice in enumerate(choices, start=1):
        console.print(f"  {number}. {choice}", markup=False, soft_wrap=True)


def picked(text: str, choices: Sequence[str]) -> list[str]:
    """Comma-separated numbers or names, as names (a name not listed stays as
    written, for the caller's check to refuse with its reason)."""
    names = []
    for part in split(text):
        if part.isdigit():
            number = int(part)
            if not 1 <= number <= len(choices):
                raise typer.BadParameter(f"{number} is not in the list (1 to {len(choices)})")
            names.append(choices[number - 1])
        else:
            names.append(part)
    return names
