"""``idsync db``: the idsync database."""

from __future__ import annotations

import typer

from idsync.cli.common import workspace
from idsync.cli.output import console

app = typer.Typer(help="The idsync database (SQLite by default, or IDSYNC_DATABASE_URL).", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Option("head", help="Target revision.")) -> None:
    """Apply schema migrations in place (no data is lost); on PostgreSQL, also
    install or upgrade the workers' job queue (procrastinate's tables)."""
    from idsync.services import database

    done = database.upgrade_schema(workspace(), revision)
    console.print(f"database at {done.after}" + (f" (was {done.before})" if done.changed else " (already up to date)"), markup=False)
    if done.queue is not None:
        console.print(done.queue.line(), markup=False)


@app.command("current")
def current() -> None:
    """Show the database's schema revision and the one this idsync needs."""
    from idsync.services import database

    status = database.schema_status(workspace())
    console.print(f"database at {status.current or '(empty)'}; this idsync needs {status.head}", markup=False)
