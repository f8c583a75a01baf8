"""Smart groups, smart group update jobs, and what each update did per group.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

New tables: ``smart_groups`` and ``smart_group_jobs`` (definitions, shaped
like the others) and ``smart_group_results`` (one row per run and group:
outcome, member counts, the DNs added and removed, the error).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
DEFINITION_TABLES = ("smart_groups", "smart_group_jobs")


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


def upgrade() -> None:
    for name in DEFINITION_TABLES:
        _definition_table(name)
    op.create_table(
        "smart_group_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("group_dn", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("added_dns", sa.JSON(), nullable=False),
        sa.Column("removed_dns", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_smart_group_results"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_smart_group_results_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_smart_group_results_run_id", "smart_group_results", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_smart_group_results_run_id", table_name="smart_group_results")
    op.drop_table("smart_group_results")
    for name in reversed(DEFINITION_TABLES):
        op.drop_table(name)
