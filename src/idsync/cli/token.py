"""``idsync token``: API tokens, for scripts, the REST API and ``IDSYNC_TOKEN``.

A token is printed once, when created, and never again: idsync keeps only a
hash of it. Lists show its public prefix (``idsync_<prefix>_…``).
"""

from __future__ import annotations

from typing import Any

import typer

from idsync.cli.common import workspace
from idsync.cli.output import (
    FormatOption,
    JsonOption,
    console,
    err_console,
    print_json,
    table,
    when,
)
from idsync.domain.durations import parse_duration
from idsync.services import tokens

app = typer.Typer(help="API tokens: credentials for scripts and the REST API, shown once.", no_args_is_help=True)

UserOption = typer.Option(None, "--user", help="Another user's tokens (needs the role admin); default: your own.")


def _row(token: Any) -> dict[str, Any]:
    return {
        "user": token.user_name, "name": token.name, "prefix": token.prefix, "created_at": token.created_at,
        "expires_at": token.expires_at, "last_used_at": token.last_used_at, "revoked_at": token.revoked_at,
    }


@app.command("create")
def create(
    name: str = typer.Argument(..., help="What the token is for (e.g. ci, backup-script)."),
    user: str | None = UserOption,
    expires: str | None = typer.Option(None, "--expires", help="Valid for this long (90d, 12h); default: until revoked."),
    json: bool = JsonOption,
) -> None:
    """Create an API token and print it once: it is not shown again."""
    try:
        lifetime = parse_duration(expires) if expires is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires") from exc
    made = tokens.create(workspace(), name, user=user, expires=lifetime)
    if json:
        print_json(_row(made.row) | {"token": made.token})
    else:
        console.print(made.token, markup=False, soft_wrap=True)
    err_console.print(
        f"token {made.row.name} of user {made.row.user_name}: keep it now, it is not shown again"
        + (f" (expires {when(made.row.expires_at)})" if made.row.expires_at else ""),
        markup=False,
    )


@app.command("list")
def list_(
    user: str | None = UserOption,
    all_users: bool = typer.Option(False, "--all", help="The tokens of every user (needs the role admin)."),
    fmt: str = FormatOption,
    json: bool = JsonOption,
) -> None:
    """List API tokens (never their secret): name, prefix, expiry, last use."""
    found = tokens.list_tokens(workspace(), user=user, every_user=all_users)
    if json:
        print_json([_row(t) for t in found])
        return
    table(None, ["user", "name", "token", "created", "expires", "last used", "state"], [
        (t.user_name, t.name, f"idsync_{t.prefix}_…", when(t.created_at), when(t.expires_at), when(t.last_used_at),
         "revoked" if t.revoked_at else "active")
        for t in found
    ], fmt=fmt)


@app.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="The token's name or prefix."),
    user: str | None = UserOption,
) -> None:
    """Revoke an API token: it stops working at once."""
    done = tokens.revoke(workspace(), name, user=user)
    console.print(f"token {done.name} of user {done.user_name} revoked", markup=False)
