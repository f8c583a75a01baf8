"""Pieces shared by the command modules."""

from __future__ import annotations

import sys
from typing import Any

import typer
import yaml

from idsync.cli.output import console, print_json
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


def print_document(body: dict[str, Any], json: bool) -> None:
    """A definition as JSON (for scripts) or as the YAML a user would write."""
    if json:
        print_json(body)
    else:
        console.print(yaml.safe_dump(body, sort_keys=False, allow_unicode=True).rstrip(), markup=False)


def print_test_result(noun: str, name: str, line: str, json: bool) -> None:
    """The one line a connection test gives, or its JSON form."""
    if json:
        print_json({noun: name, "ok": True, "detail": line})
    else:
        console.print(line, markup=False)
