"""An index on the due time of schedule occurrences.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06

The metrics of a node read the scheduler's lag (due time to start) of the
occurrences due in the last minutes at every scrape; without this index that
read scans every occurrence ever recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_schedule_occurrences_due_at", "schedule_occurrences", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_schedule_occurrences_due_at", table_name="schedule_occurrences")
