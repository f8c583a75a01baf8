"""Indexes for the pages every user opens: the dashboard, run history, the requests inbox.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Measured on 100,000 runs and 10,000 requests (``python -m benchmarks --only
portal``), the dashboard's queries scanned the runs table:

- ``ix_runs_state_created_at``: runs in one state, newest first (failed and
  held runs on the dashboard, history filtered by state, the reaper's
  running runs), read in index order and stopped at the page's end, instead
  of every run in that state sorted;
- ``ix_runs_kind_created_at_state``: the runs of the last 24 hours counted
  by state, from the index alone;
- ``ix_plans_state``: plans still computing (what the reaper looks for
  before every listing), found without joining every finished run;
- ``ix_requests_state_created_at``: pending requests, newest first.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_runs_state_created_at", "runs", ["state", "created_at"]),
    ("ix_runs_kind_created_at_state", "runs", ["kind", "created_at", "state"]),
    ("ix_plans_state", "plans", ["state"]),
    ("ix_requests_state_created_at", "requests", ["state", "created_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
