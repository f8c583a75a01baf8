"""A preview holds a lease on the plan it computes.

Revision ID: 0006
Revises: 0005
Create Date: 2025-01-15

``plans.node`` names the process computing a plan (host and process id)
and ``plans.lease_until`` says until when that process is known to be
alive; its heartbeat moves it forward. A plan still ``computing`` after its
lease ran out was left by a process that died, and is marked failed when
plans are next listed or a preview or run starts. Plans computed by a run
carry no lease of their own (the run's lease covers them), nor do plans
from before this revision: no row changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("plans", sa.Column("node", sa.String(200), nullable=True))
    op.add_column("plans", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("plans", "lease_until")
    op.drop_column("plans", "node")
