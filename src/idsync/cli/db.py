"""``idsync db``: the idsync database."""

from __future__ import annotations

import typer

from idsync.cli.output import console
from idsync.store.db import Database

app = typer.Typer(help="The idsync database (SQLite by default, or IDSYNC_DATABASE_URL).", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Option("head", help="Target revision.")) -> None:
    """Apply schema migrations in place (no data is lost)."""
    db = Database()
    before = db.current_revision()
    db.upgrade(revision)
    after = db.current_revision()
    console.print(f"database at {after}" + (f" (was {before})" if before != after else " (already up to date)"), markup=False)


@app.command("current")
def current() -> None:
    """Show the database's schema revision and the one this idsync needs."""
    db = Database()
    console.print(f"database at {db.current_revision() or '(empty)'}; this idsync needs {db.head_revision()}", markup=False)
