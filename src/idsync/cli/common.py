"""Pieces shared by the command modules."""

from __future__ import annotations

import sys

import typer

from idsync.services.workspace import Workspace


def workspace() -> Workspace:
    return Workspace()


def read_secret(prompt: str, from_stdin: bool) -> str:
    """A secret from standard input (for scripts) or a hidden prompt; never from argv."""
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = typer.prompt(prompt, hide_input=True)
    if not value:
        raise typer.BadParameter("the secret is empty")
    return value


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive step unless --yes; abort with exit 1 on no."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise typer.BadParameter("refusing to go on without confirmation; pass --yes")
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)
