"""Job state: content hashes of changed-only runs, and generated passwords.

Revision ID: 0003
Revises: 0002
Create Date: 2024-12-05

``job_state`` keeps, per job and match key, the hash of the values last
written (``update_mode: changed`` with ``changed_by: {hash: true}``).
``generated_passwords`` keeps the passwords generated for created objects,
encrypted with the installation's secret key, until they are delivered to
the job's recipients (or shown once with ``idsync run passwords``); they go
with their run when it is deleted.

New tables only: nothing existing changes, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_state",
        sa.Column("job_name", sa.String(200), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("job_name", "key", name="pk_job_state"),
    )
    op.create_table(
        "generated_passwords",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("job_name", sa.String(200), nullable=False),
        sa.Column("dn", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_generated_passwords"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_generated_passwords_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_generated_passwords_run_id", "generated_passwords", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_generated_passwords_run_id", table_name="generated_passwords")
    op.drop_table("generated_passwords")
    op.drop_table("job_state")
