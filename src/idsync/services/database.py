"""The idsync database itself: its schema revision, and upgrading it.

These are the only use cases that open the database without first checking
that its schema is the one this idsync needs: they are how it gets there.
Upgrading needs the role admin once the database has users; a database from
before users existed is upgraded by whoever can open it.
"""

from __future__ import annotations

from dataclasses import dataclass

from idsync.domain.roles import Role
from idsync.services import authz, job_queue
from idsync.services.workspace import Workspace
from idsync.store.db import Database


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database's schema stands."""

    current: str | None
    """The database's revision; None for a database never migrated (empty)."""
    head: str
    """The revision this idsync needs."""

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


@dataclass(frozen=True)
class Upgrade:
    before: str | None
    after: str | None
    queue: job_queue.SchemaChange | None = None
    """The job queue's schema (PostgreSQL with procrastinate installed), None otherwise."""

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _database(ws: Workspace) -> Database:
    return Database(ws.database_url)


def schema_status(ws: Workspace) -> SchemaStatus:
    """The database's schema revision and the one this idsync needs."""
    db = _database(ws)
    try:
        return SchemaStatus(db.current_revision(), db.head_revision())
    finally:
        db.dispose()


def upgrade_schema(ws: Workspace, revision: str = "head") -> Upgrade:
    """Apply the schema migrations up to *revision*, in place (no data is lost)."""
    db = _database(ws)
    try:
        authz.require_on_database(db, ws.principal, Role.ADMIN, "upgrade the database schema")
        before = db.current_revision()
        db.upgrade(revision)
        # The workers' job queue (procrastinate) lives in the same database and upgrades with it.
        return Upgrade(before, db.current_revision(), job_queue.install_schema(db))
    finally:
        db.dispose()
