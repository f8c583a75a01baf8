"""Revision 0008 chains the audit entries written before it, and makes both trails append-only.

The PostgreSQL suite runs :func:`upgrade_chains_existing_entries` on a
database of its own (tests/integration/test_audit_chain_postgres.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import JSON, Integer, String, column, insert, select, table, text

from idsync.store import Database
from idsync.store.chain import ZERO_HASH, verify
from idsync.store.tables import UTCDateTime, audit_log, chain_heads, request_decisions

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)

_OLD_AUDIT = table(
    "audit_log",
    column("at", UTCDateTime()), column("actor", String()), column("action", String()),
    column("object_kind", String()), column("object_name", String()), column("detail", JSON()),
)
"""audit_log as revision 0007 left it: no hash columns."""

_OLD_DECISIONS = table(
    "request_decisions",
    column("request_id", Integer()), column("at", UTCDateTime()), column("actor", String()),
    column("action", String()), column("detail", JSON()), column("prev_hash", String()), column("hash", String()),
)


def upgrade_chains_existing_entries(url: str) -> None:
    database = Database(url)
    try:
        database.upgrade("0007")
        with database.engine.begin() as conn:
            conn.execute(insert(_OLD_AUDIT), [
                {"at": START + timedelta(minutes=n), "actor": f"actor-{n}", "action": "update",
                 "object_kind": "job", "object_name": "staff", "detail": {"changed": ["mapping"], "n": n}}
                for n in range(5)
            ])
            conn.execute(insert(_OLD_DECISIONS).values(
                request_id=1, at=START, actor="ann", action="comment", detail={},
                prev_hash=ZERO_HASH, hash="a" * 64,
            ))
        database.upgrade()
        with database.session() as session:
            report = verify(session, audit_log)
        assert report.intact and (report.count, report.last_id) == (5, 5)
        with database.session() as session:
            heads = {row.table_name: (row.last_id, row.last_hash, row._mapping["count"]) for row in session.execute(select(chain_heads))}
            first = session.execute(select(audit_log).where(audit_log.c.id == 1)).one()
        assert heads == {"audit_log": (5, report.head_hash, 5), "request_decisions": (1, "a" * 64, 1)}
        assert first.prev_hash == ZERO_HASH and first.actor == "actor-0"
        with pytest.raises(Exception) as refused, database.session() as session:
            session.execute(text("DELETE FROM audit_log"))
        assert "audit_log is append-only" in str(refused.value)
        with database.engine.begin() as conn:  # and back: the columns, heads and triggers go
            config = database._alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0007")
        with database.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log WHERE actor = 'actor-0'"))
            conn.execute(text("DELETE FROM request_decisions"))
        database.upgrade()
        with database.session() as session:
            assert verify(session, audit_log).count == 4
            assert verify(session, request_decisions).count == 0
    finally:
        database.dispose()


def test_upgrade_chains_existing_entries_and_downgrade_undoes_it(tmp_path: Path) -> None:
    upgrade_chains_existing_entries(f"sqlite:///{tmp_path / 'idsync.db'}")
