"""Record errors kept with their plan; one running run per job.

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-08

``plan_errors`` holds the record errors a plan's computation found, so a
stored plan shows them and the run that applies it reports them. Plans go
with their errors when deleted. Plans gain no column: a plan being applied
is in state ``applying`` (a value of the existing ``state`` column) with the
applying run in ``applied_run_id``.

``uq_runs_running_job`` lets at most one run of a job be running, enforced
by the database on SQLite and PostgreSQL alike (a partial unique index, as
for collection runs). A database upgraded while it holds several running
runs of one job (left by killed processes, or by two runs started together
before this revision) keeps the newest of them running; the older ones are
marked failed with the reason, so the index can be created. No other row
changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING_JOB = sa.text("kind = 'job' AND state = 'running'")
SUPERSEDED = "failed by the schema upgrade to 0005: a newer run of the same job was also running"


def upgrade() -> None:
    op.create_table(
        "plan_errors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("attribute", sa.String(200), nullable=True),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("dn", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_plan_errors"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_plan_errors_plan_id_plans", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_plan_errors_plan_id", "plan_errors", ["plan_id"])
    _end_superseded_runs()
    op.create_index(
        "uq_runs_running_job",
        "runs",
        ["job_id"],
        unique=True,
        sqlite_where=RUNNING_JOB,
        postgresql_where=RUNNING_JOB,
    )


def _end_superseded_runs() -> None:
    """Mark failed every running job run but the newest of its job."""
    runs = sa.table(
        "runs",
        sa.column("id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("job_id", sa.Integer()),
        sa.column("state", sa.String()),
        sa.column("error", sa.Text()),
        sa.column("finished_at", sa.DateTime(timezone=True)),
        sa.column("lease_until", sa.DateTime(timezone=True)),
    )
    running = sa.and_(runs.c.kind == "job", runs.c.state == "running", runs.c.job_id.is_not(None))
    bind = op.get_bind()
    newest: dict[int, int] = {}
    superseded: list[int] = []
    for run_id, job_id in bind.execute(sa.select(runs.c.id, runs.c.job_id).where(running).order_by(runs.c.id.desc())):
        if job_id in newest:
            superseded.append(run_id)
        else:
            newest[job_id] = run_id
    if superseded:
        # Naive UTC on SQLite, as the application's UTCDateTime stores it.
        now = datetime.now(UTC)
        stamp = now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now
        bind.execute(
            sa.update(runs)
            .where(runs.c.id.in_(superseded))
            .values(state="failed", error=SUPERSEDED, finished_at=stamp, lease_until=None)
        )


def downgrade() -> None:
    op.drop_index("uq_runs_running_job", table_name="runs")
    op.drop_index("ix_plan_errors_plan_id", table_name="plan_errors")
    op.drop_table("plan_errors")
