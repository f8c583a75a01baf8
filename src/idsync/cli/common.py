"""Pieces shared by the command modules."""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Collection, Mapping
from typing import Any

import typer

from idsync.cli.output import console, print_json
from idsync.domain.principals import Principal
from idsync.errors import AuthError, PermissionDeniedError
from idsync.services import accounts
from idsync.services.workspace import Workspace


def os_principal() -> Principal:
    """The CLI acts as the operating-system account running it.

    The name comes from the process's real user id, not from ``USER`` or
    ``LOGNAME``, which anyone can set: whose rights apply is not up to an
    environment variable.
    """
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # an account without a passwd entry, as in some containers
        name = f"uid {os.getuid()}"
    return Principal(name, "os-user")


TOKEN_VARIABLE = "IDSYNC_TOKEN"  # noqa: S105 (the variable's name)


def workspace(database_url: str | None = None) -> Workspace:
    """The workspace this command works through, acting for whoever runs it.

    - ``IDSYNC_TOKEN`` set: the idsync user of that API token, once the token
      is verified (a bad token is a permission error, exit 8; the token is
      never echoed). A token is a credential, so this variable proves who
      acts; ``USER`` and the like never do.
    - otherwise the idsync user mapped to the operating-system account
      running the CLI (``user add --os-user``);
    - otherwise the account itself: the bootstrap administrator while no
      user exists, and refused everything once users exist.
    """
    ws = Workspace(principal=os_principal(), database_url=database_url)
    token = os.environ.get(TOKEN_VARIABLE)
    if token:
        try:
            from idsync.services import tokens  # only when a token is given

            return ws.acting_as(tokens.authenticate_token(ws, token))
        except AuthError as exc:
            raise PermissionDeniedError(
                f"{TOKEN_VARIABLE}: {exc.message}", hint=f"set {TOKEN_VARIABLE} to a valid token, or unset it"
            ) from exc
    return ws.acting_as(accounts.os_account_principal(ws))


def read_secret(prompt: str, from_stdin: bool, *, confirm: bool = False) -> str:
    """A secret from standard input (for scripts: one line) or a hidden
    prompt, asked twice with *confirm*; never from argv."""
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    if not value:
        raise typer.BadParameter("the secret is empty")
    return value


def refuse_options_of_other_kinds(kind: str, options: Mapping[str, tuple[object, Collection[str]]]) -> None:
    """A usage error naming each option given that *kind* does not take.

    *options* maps a flag to (its value, the kinds it is for); a value of None
    or False was not given. Ignoring such an option silently would save a
    definition other than the one the user asked for. An unknown *kind* is
    left to the definition's validation, which lists the known ones.
    """
    known = {k for _value, kinds in options.values() for k in kinds}
    if kind not in known:
        return
    misplaced = [
        f"{flag} ({' or '.join(kinds)} only)"
        for flag, (value, kinds) in options.items()
        if value is not None and value is not False and kind not in kinds
    ]
    if misplaced:
        raise typer.BadParameter(f"not taken by --kind {kind}: {', '.join(misplaced)}")


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
        import yaml  # only here: most commands print no YAML

        console.print(yaml.safe_dump(body, sort_keys=False, allow_unicode=True).rstrip(), markup=False)


def print_test_result(noun: str, name: str, line: str, json: bool) -> None:
    """The one line a connection test gives, or its JSON form."""
    if json:
        print_json({noun: name, "ok": True, "detail": line})
    else:
        console.print(line, markup=False)
