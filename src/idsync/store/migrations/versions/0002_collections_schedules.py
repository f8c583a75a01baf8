"""Job collections, schedules and the scheduler.

Revision ID: 0002
Revises: 0001
Create Date: 2024-12-02

New tables: ``collections`` and ``schedules`` (definitions, like jobs),
``schedule_occurrences`` (one row per due time, unique on schedule, trigger
and due time, so only the node inserting it starts it) and
``schedule_cursors`` (how far each schedule has been looked at). Runs gain
their collection, parent run and occurrence, and the lease, heartbeat, fence
and node of the process running them.

SQLite cannot add or drop a foreign key in place: the runs table is rebuilt
(copied into a new table with the new columns and constraints). Dropping the
old table would cascade to the run errors and logs, so those are set aside
first and put back after. Existing rows are kept as they are: the new
columns are empty (fence 0).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
DEFINITION_TABLES = ("collections", "schedules")

# (column, type, referred table, on delete)
FOREIGN_COLUMNS = (
    ("collection_id", "collections", "SET NULL"),
    ("parent_run_id", "runs", "CASCADE"),
    ("occurrence_id", "schedule_occurrences", "SET NULL"),
)
PLAIN_COLUMNS = (
    ("collection_name", sa.String(200)),
    ("node", sa.String(200)),
    ("lease_until", TIMESTAMP),
    ("heartbeat_at", TIMESTAMP),
    ("stop_requested", sa.Text()),
    ("stop_after", sa.Integer()),
)
INDEXES = (
    ("ix_runs_parent_run_id", "parent_run_id"),
    ("ix_runs_occurrence_id", "occurrence_id"),
    ("ix_runs_collection_id", "collection_id"),
    ("ix_runs_state", "state"),
)
PARTIAL_UNIQUE = (("uq_runs_running_collection", "running"), ("uq_runs_queued_collection", "queued"))


def _definition_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
        sa.UniqueConstraint("name", name=f"uq_{name}_name"),
    )


SET_ASIDE = (
    "CREATE TEMPORARY TABLE keep_run_errors AS SELECT * FROM run_errors",
    "CREATE TEMPORARY TABLE keep_run_logs AS SELECT * FROM run_logs",
)
PUT_BACK = (
    "DELETE FROM run_errors",
    "INSERT INTO run_errors SELECT * FROM keep_run_errors",
    "DROP TABLE keep_run_errors",
    "DELETE FROM run_logs",
    "INSERT INTO run_logs SELECT * FROM keep_run_logs",
    "DROP TABLE keep_run_logs",
)


@contextmanager
def _children_kept() -> Iterator[None]:
    """Keep the run errors and logs across a rebuild of the runs table (SQLite)."""
    for statement in SET_ASIDE:
        op.execute(statement)
    yield
    for statement in PUT_BACK:
        op.execute(statement)


def _add_run_columns() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with _children_kept(), op.batch_alter_table("runs", recreate="always") as batch:
            for column, _referred, _ondelete in FOREIGN_COLUMNS:
                batch.add_column(sa.Column(column, sa.Integer(), nullable=True))
            for column, type_ in PLAIN_COLUMNS:
                batch.add_column(sa.Column(column, type_, nullable=True))
            batch.add_column(sa.Column("fence", sa.Integer(), nullable=False, server_default=sa.text("0")))
            for column, referred, ondelete in FOREIGN_COLUMNS:
                batch.create_foreign_key(
                    f"fk_runs_{column}_{referred}", referred, [column], ["id"], ondelete=ondelete
                )
        return
    for column, referred, ondelete in FOREIGN_COLUMNS:
        op.add_column("runs", sa.Column(column, sa.Integer(), nullable=True))
        op.create_foreign_key(f"fk_runs_{column}_{referred}", "runs", referred, [column], ["id"], ondelete=ondelete)
    for column, type_ in PLAIN_COLUMNS:
        op.add_column("runs", sa.Column(column, type_, nullable=True))
    op.add_column("runs", sa.Column("fence", sa.Integer(), nullable=False, server_default=sa.text("0")))


def upgrade() -> None:
    for name in DEFINITION_TABLES:
        _definition_table(name)

    op.create_table(
        "schedule_occurrences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("schedule_name", sa.String(200), nullable=False),
        sa.Column("trigger_index", sa.Integer(), nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("node", sa.String(200), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedule_occurrences"),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name="fk_schedule_occurrences_schedule_id_schedules",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "schedule_id",
            "trigger_index",
            "due_at",
            name="uq_schedule_occurrences_schedule_id_trigger_index_due_at",
        ),
    )
    op.create_index(
        "ix_schedule_occurrences_schedule_name_due_at",
        "schedule_occurrences",
        ["schedule_name", "due_at"],
    )

    op.create_table(
        "schedule_cursors",
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("checked_until", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("schedule_id", name="pk_schedule_cursors"),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name="fk_schedule_cursors_schedule_id_schedules",
            ondelete="CASCADE",
        ),
    )

    _add_run_columns()
    for name, column in INDEXES:
        op.create_index(name, "runs", [column])
    for name, state in PARTIAL_UNIQUE:
        where = sa.text(f"kind = 'collection' AND state = '{state}'")
        op.create_index(
            name, "runs", ["collection_name"], unique=True, sqlite_where=where, postgresql_where=where
        )


def _drop_run_columns_sqlite() -> None:
    with _children_kept(), op.batch_alter_table("runs", recreate="always") as batch:
        for column, _referred, _ondelete in FOREIGN_COLUMNS:
            batch.drop_column(column)
        for column, _type in PLAIN_COLUMNS:
            batch.drop_column(column)
        batch.drop_column("fence")


def downgrade() -> None:
    for name, _state in PARTIAL_UNIQUE:
        op.drop_index(name, table_name="runs")
    for name, _column in INDEXES:
        op.drop_index(name, table_name="runs")
    if op.get_bind().dialect.name == "sqlite":
        _drop_run_columns_sqlite()
    else:
        for column, referred, _ondelete in FOREIGN_COLUMNS:
            op.drop_constraint(f"fk_runs_{column}_{referred}", "runs", type_="foreignkey")
            op.drop_column("runs", column)
        for column, _type in PLAIN_COLUMNS:
            op.drop_column("runs", column)
        op.drop_column("runs", "fence")
    op.drop_table("schedule_cursors")
    op.drop_index("ix_schedule_occurrences_schedule_name_due_at", table_name="schedule_occurrences")
    op.drop_table("schedule_occurrences")
    for name in DEFINITION_TABLES:
        op.drop_table(name)
