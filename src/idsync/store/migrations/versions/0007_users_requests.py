"""Users, roles, API tokens; workflow requests and their decision trail.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

New tables only; no existing row changes:

- ``users`` (local or directory users, the OS account the CLI maps to
  them), ``user_roles``, ``role_groups`` (members of a directory group hold
  a role) and ``api_tokens`` (SHA-256 of the secret part, found by prefix).
- ``requests`` (a run waiting for approval, at most one pending per
  collection, kept by a partial unique index), ``request_plans`` (the plans
  a request binds) and ``request_decisions``, the decision trail: each row
  holds the hash of the one before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("os_user", sa.String(200), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("source", sa.String(20), nullable=False, server_default="local"),
        sa.Column("store_name", sa.String(200), nullable=True),
        sa.Column("dn", sa.Text(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
        sa.UniqueConstraint("os_user", name="uq_users_os_user"),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.Column("granted_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "role", name="pk_user_roles"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_roles_user_id_users", ondelete="CASCADE"),
    )
    op.create_table(
        "role_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_name", sa.String(200), nullable=False),
        sa.Column("group_dn", sa.Text(), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_role_groups"),
        sa.UniqueConstraint("store_name", "group_dn", "role", name="uq_role_groups_store_name_group_dn_role"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=True),
        sa.Column("last_used_at", WHEN, nullable=True),
        sa.Column("revoked_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("prefix", name="uq_api_tokens_prefix"),
        sa.UniqueConstraint("user_id", "name", name="uq_api_tokens_user_id_name"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_api_tokens_user_id_users", ondelete="CASCADE"),
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("collection_name", sa.String(200), nullable=False),
        sa.Column("store_name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("escalate_at", WHEN, nullable=True),
        sa.Column("escalation_step", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("plans_at", WHEN, nullable=True),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_requests"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_requests_run_id_runs", ondelete="CASCADE"),
    )
    op.create_index("ix_requests_state", "requests", ["state"])
    op.create_index("ix_requests_run_id", "requests", ["run_id"])
    op.create_index("ix_requests_created_at", "requests", ["created_at"])
    op.create_index(
        "uq_requests_pending_collection",
        "requests",
        ["collection_name"],
        unique=True,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "request_plans",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("job_name", sa.String(200), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("source_fingerprint", sa.Text(), nullable=True),
        sa.Column("computed_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("request_id", "seq", name="pk_request_plans"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name="fk_request_plans_request_id_requests", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name="fk_request_plans_plan_id_plans", ondelete="SET NULL"),
    )
    op.create_table(
        "request_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False, server_default=""),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_request_decisions"),
    )
    op.create_index("ix_request_decisions_request_id", "request_decisions", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_request_decisions_request_id", table_name="request_decisions")
    op.drop_table("request_decisions")
    op.drop_table("request_plans")
    for index in ("uq_requests_pending_collection", "ix_requests_created_at", "ix_requests_run_id", "ix_requests_state"):
        op.drop_index(index, table_name="requests")
    op.drop_table("requests")
    op.drop_table("api_tokens")
    op.drop_table("role_groups")
    op.drop_table("user_roles")
    op.drop_table("users")
