"""The initial schema: definitions, runs, plans and the audit log.

Revision ID: 0001
Revises:
Create Date: 2024-11-24

A migration is a frozen snapshot: it spells out its tables instead of
importing ``idsync.store.tables``, so later edits of the model cannot change
what an old revision does.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
DEFINITION_TABLES = ("identity_stores", "data_sources", "jobs")


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
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("job_name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("change_count", sa.Integer(), nullable=False),
        sa.Column("applied_run_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_plans"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_plans_job_id_jobs", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_plans_created_at", "plans", ["created_at"])
    op.create_index("ix_plans_job_name_created_at", "plans", ["job_name", "created_at"])
    op.create_index("ix_plans_job_id", "plans", ["job_id"])

    op.create_table(
        "plan_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(20), nullable=False),
        sa.Column("dn", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("new_dn", sa.Text(), nullable=True),
        sa.Column("anchor", sa.String(200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_plan_changes"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_plan_changes_plan_id_plans", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("plan_id", "seq", name="uq_plan_changes_plan_id_seq"),
    )

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("job_name", sa.String(200), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("trigger", sa.String(50), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_runs_job_id_jobs", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_runs_plan_id_plans", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_job_name_created_at", "runs", ["job_name", "created_at"])
    op.create_index("ix_runs_job_id", "runs", ["job_id"])
    op.create_index("ix_runs_plan_id", "runs", ["plan_id"])

    op.create_table(
        "run_errors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("attribute", sa.String(200), nullable=True),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("dn", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_errors"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_errors_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_run_errors_run_id", "run_errors", ["run_id"])

    op.create_table(
        "run_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_logs"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_logs_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_run_logs_run_id", "run_logs", ["run_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("object_kind", sa.String(50), nullable=False),
        sa.Column("object_name", sa.String(200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index(
        "ix_audit_log_object_kind_object_name", "audit_log", ["object_kind", "object_name"]
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("run_logs")
    op.drop_table("run_errors")
    op.drop_table("runs")
    op.drop_table("plan_changes")
    op.drop_table("plans")
    for name in reversed(DEFINITION_TABLES):
        op.drop_table(name)
