"""The audit log and the decision trail become hash-chained and append-only.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

- ``audit_log`` gains ``prev_hash`` and ``hash``; existing entries are
  chained in id order here, with the hash function of
  :mod:`idsync.store.chain` (imported, not copied: it is the contract of
  every stored hash, and changing it needs a revision holding a frozen copy).
- ``chain_heads`` holds the head of each chained table (last row, its hash,
  how many rows), filled here for ``audit_log`` and ``request_decisions``
  (whose rows carry their hashes since 0007).
- Triggers make the database refuse UPDATE and DELETE on both tables (and
  TRUNCATE on PostgreSQL): the trail only grows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idsync.store.chain import ZERO_HASH, row_hash
from idsync.store.tables import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHAINED = ("audit_log", "request_decisions")
PAGE = 1000

_audit = sa.table(
    "audit_log",
    sa.column("id", sa.Integer()),
    sa.column("at", UTCDateTime()),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("object_kind", sa.String()),
    sa.column("object_name", sa.String()),
    sa.column("detail", sa.JSON()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)
_decisions = sa.table(
    "request_decisions", sa.column("id", sa.Integer()), sa.column("hash", sa.String())
)
_heads = sa.table(
    "chain_heads",
    sa.column("table_name", sa.String()),
    sa.column("last_id", sa.Integer()),
    sa.column("last_hash", sa.String()),
    sa.column("count", sa.Integer()),
)

_PG_FUNCTION = """
CREATE FUNCTION idsync_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$
"""


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))
    op.create_table(
        "chain_heads",
        sa.Column("table_name", sa.String(100), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", name="pk_chain_heads"),
    )
    conn = op.get_bind()
    audit_head = _chain_audit_log(conn)
    decisions_head = _decisions_head(conn)
    op.bulk_insert(_heads, [
        {"table_name": "audit_log", **audit_head},
        {"table_name": "request_decisions", **decisions_head},
    ])
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(64), nullable=False)
    _create_triggers(conn.dialect.name)


def _chain_audit_log(conn: sa.Connection) -> dict[str, object]:
    """Hash the existing entries in id order, a page at a time; the head."""
    prev, last_id, count = ZERO_HASH, 0, 0
    content_columns = [c for c in _audit.columns if c.name not in ("id", "prev_hash", "hash")]
    stamp = (
        sa.update(_audit)
        .where(_audit.c.id == sa.bindparam("row_id"))
        .values(prev_hash=sa.bindparam("new_prev"), hash=sa.bindparam("new_hash"))
    )
    while True:
        rows = conn.execute(
            sa.select(_audit.c.id, *content_columns).where(_audit.c.id > last_id).order_by(_audit.c.id).limit(PAGE)
        ).all()
        if not rows:
            break
        stamps = []
        for row in rows:
            content = {c.name: row._mapping[c.name] for c in content_columns}
            digest = row_hash(prev, content)
            stamps.append({"row_id": row.id, "new_prev": prev, "new_hash": digest})
            prev, last_id, count = digest, row.id, count + 1
        conn.execute(stamp, stamps)
    return {"last_id": last_id, "last_hash": prev, "count": count}


def _decisions_head(conn: sa.Connection) -> dict[str, object]:
    count = conn.execute(sa.select(sa.func.count()).select_from(_decisions)).scalar_one()
    last = conn.execute(sa.select(_decisions.c.id, _decisions.c.hash).order_by(_decisions.c.id.desc()).limit(1)).first()
    if last is None:
        return {"last_id": 0, "last_hash": ZERO_HASH, "count": 0}
    return {"last_id": last.id, "last_hash": last.hash, "count": count}


def _create_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute(_PG_FUNCTION)
        for table in CHAINED:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION idsync_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION idsync_append_only()"
            )
        return
    for table in CHAINED:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in CHAINED:
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION idsync_append_only()")
    else:
        for table in CHAINED:
            for event in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{event}")
    op.drop_table("chain_heads")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
