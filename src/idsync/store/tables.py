"""The tables of the idsync database, as SQLAlchemy Core metadata.

This module is the model the migrations must match: a test runs Alembic's
autogenerate comparison against a migrated database (SQLite and PostgreSQL)
and fails on any difference, so a table changed here without a new revision
under ``migrations/versions/`` never ships.

Core tables rather than ORM classes: repositories read rows into small frozen
dataclasses and write batches with ``executemany``, which is what the plan
store needs to keep up with the planner.

Every timestamp is stored in UTC and comes back timezone-aware
(:class:`UTCDateTime`), on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so later migrations can drop or alter them by name."""

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """The current instant, timezone-aware in UTC (the default clock of the repositories)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no time zone support: values are written as naive UTC and
    given back their zone on the way out. Naive datetimes are refused on the
    way in, since their meaning depends on the machine that wrote them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored: give it a time zone")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _definition_table(name: str) -> Table:
    """Identity stores, data sources and jobs share one shape: a name, a type, a JSON body."""
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(200), nullable=False, unique=True),
        Column("type", String(50), nullable=False),
        Column("body", JSON, nullable=False),
        Column("secrets", Text, nullable=True),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )


identity_stores = _definition_table("identity_stores")
data_sources = _definition_table("data_sources")
jobs = _definition_table("jobs")
collections = _definition_table("collections")
schedules = _definition_table("schedules")
smart_groups = _definition_table("smart_groups")
smart_group_jobs = _definition_table("smart_group_jobs")

plans = Table(
    "plans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
    Column("job_name", String(200), nullable=False),
    # computing, ready, applying (claimed by the run in applied_run_id), applied, failed.
    Column("state", String(20), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("change_count", Integer, nullable=False),
    # No foreign key: runs already reference plans, and a cycle would need
    # ALTER TABLE, which SQLite lacks. The run keeps the link that matters.
    Column("applied_run_id", Integer, nullable=True),
    Column("error", Text, nullable=True),
    # A preview's lease (revision 0006): the process computing the plan, and
    # until when it is known alive; a plan computing past it was left by a
    # process that died. Plans computed by a run have none (the run's lease).
    Column("node", String(200), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Index("ix_plans_created_at", "created_at"),
    Index("ix_plans_job_name_created_at", "job_name", "created_at"),
    Index("ix_plans_job_id", "job_id"),
    Index("ix_plans_state", "state"),  # revision 0011: the reaper's plans still computing
)

plan_changes = Table(
    "plan_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("plan_id", Integer, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("op", String(20), nullable=False),
    Column("dn", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("new_dn", Text, nullable=True),
    Column("anchor", String(200), nullable=True),
    Column("payload", JSON, nullable=False),
    UniqueConstraint("plan_id", "seq"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
    Column("job_name", String(200), nullable=False),
    Column("plan_id", Integer, ForeignKey("plans.id", ondelete="SET NULL"), nullable=True),
    Column("state", String(30), nullable=False),
    Column("trigger", String(50), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("counts", JSON, nullable=False),
    Column("error", Text, nullable=True),
    # Collections and the scheduler (revision 0002). A collection run has one
    # child run per job (parent_run_id); the lease columns let any node see
    # that the node running it is gone, and the fence makes a node that lost
    # its lease unable to write the result.
    Column("collection_id", Integer, ForeignKey("collections.id", ondelete="SET NULL"), nullable=True),
    Column("collection_name", String(200), nullable=True),
    Column("parent_run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=True),
    Column(
        "occurrence_id",
        Integer,
        ForeignKey("schedule_occurrences.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("node", String(200), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("fence", Integer, nullable=False, server_default=text("0")),
    Column("stop_requested", Text, nullable=True),
    Column("stop_after", Integer, nullable=True),
    Index("ix_runs_created_at", "created_at"),
    Index("ix_runs_job_name_created_at", "job_name", "created_at"),
    Index("ix_runs_job_id", "job_id"),
    Index("ix_runs_plan_id", "plan_id"),
    Index("ix_runs_parent_run_id", "parent_run_id"),
    Index("ix_runs_occurrence_id", "occurrence_id"),
    Index("ix_runs_collection_id", "collection_id"),
    Index("ix_runs_state", "state"),
    # Revision 0011: runs in one state newest first, and the last day's runs counted by state.
    Index("ix_runs_state_created_at", "state", "created_at"),
    Index("ix_runs_kind_created_at_state", "kind", "created_at", "state"),
)

_COLLECTION_RUN = runs.c.kind == "collection"

Index(
    "uq_runs_running_collection",
    runs.c.collection_name,
    unique=True,
    sqlite_where=and_(_COLLECTION_RUN, runs.c.state == "running"),
    postgresql_where=and_(_COLLECTION_RUN, runs.c.state == "running"),
)
"""The overlap rule, kept by the database: at most one running run per collection."""

Index(
    "uq_runs_queued_collection",
    runs.c.collection_name,
    unique=True,
    sqlite_where=and_(_COLLECTION_RUN, runs.c.state == "queued"),
    postgresql_where=and_(_COLLECTION_RUN, runs.c.state == "queued"),
)
"""The queue of a collection holds at most one waiting run."""

_JOB_RUN = runs.c.kind == "job"

Index(
    "uq_runs_running_job",
    runs.c.job_id,
    unique=True,
    sqlite_where=and_(_JOB_RUN, runs.c.state == "running"),
    postgresql_where=and_(_JOB_RUN, runs.c.state == "running"),
)
"""One run of a job at a time (revision 0005), whether started on its own or
by a collection run: a second start is refused by the database."""

# Record errors of a plan (revision 0005): found while computing it, shown
# with it, and carried into the run that applies it.
plan_errors = Table(
    "plan_errors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("plan_id", Integer, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=True),
    Column("attribute", String(200), nullable=True),
    Column("line", Integer, nullable=True),
    Column("dn", Text, nullable=True),
    Column("message", Text, nullable=False),
    Index("ix_plan_errors_plan_id", "plan_id"),
)

run_errors = Table(
    "run_errors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=True),
    Column("attribute", String(200), nullable=True),
    Column("line", Integer, nullable=True),
    Column("dn", Text, nullable=True),
    Column("message", Text, nullable=False),
    Index("ix_run_errors_run_id", "run_id"),
)

# What a smart group update did to each group (revision 0009): one row per
# run and group. The DNs added and removed are kept up to a limit (the
# counts are whole); outcome is updated, unchanged, refused or failed.
smart_group_results = Table(
    "smart_group_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("group_name", String(200), nullable=False),
    Column("group_dn", Text, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("members", Integer, nullable=False),
    Column("added", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
    Column("added_dns", JSON, nullable=False),
    Column("removed_dns", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_smart_group_results_run_id", "run_id"),
)

run_logs = Table(
    "run_logs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("level", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_run_logs_run_id", "run_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("object_kind", String(50), nullable=False),
    Column("object_name", String(200), nullable=False),
    Column("detail", JSON, nullable=False),
    # The hash chain (revision 0008, store/chain.py): the hash of the entry
    # before, and of this one; the database refuses UPDATE and DELETE.
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_object_kind_object_name", "object_kind", "object_name"),
)

schedule_occurrences = Table(
    "schedule_occurrences",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("schedule_id", Integer, ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False),
    Column("schedule_name", String(200), nullable=False),
    # Index of the trigger in the schedule; -1 for "run now".
    Column("trigger_index", Integer, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("state", String(20), nullable=False),
    Column("node", String(200), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    # The node that inserts an occurrence owns it: the key makes a second insert a no-op.
    UniqueConstraint("schedule_id", "trigger_index", "due_at"),
    Index("ix_schedule_occurrences_schedule_name_due_at", "schedule_name", "due_at"),
    # The scheduler's lag over the last minutes, read by every metrics scrape (revision 0010).
    Index("ix_schedule_occurrences_due_at", "due_at"),
)

schedule_cursors = Table(
    "schedule_cursors",
    metadata,
    Column("schedule_id", Integer, ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True),
    # Occurrences up to this instant have been looked at (fired, or recorded as missed).
    Column("checked_until", UTCDateTime, nullable=False),
)

# Job state (revision 0003): what changed-only runs remember between runs,
# and generated passwords waiting for delivery (encrypted with the SecretBox).
job_state = Table(
    "job_state",
    metadata,
    Column("job_name", String(200), primary_key=True),
    # The normalised match key; compound keys joined by U+001F.
    Column("key", Text, primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

generated_passwords = Table(
    "generated_passwords",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("job_name", String(200), nullable=False),
    Column("dn", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("recipients", JSON, nullable=False),
    # A SecretBox token: the password is never stored in clear.
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_generated_passwords_run_id", "run_id"),
)

# Notification outbox (revision 0004): messages written in the transaction
# that finishes a run, delivered later by the sender loop.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("collection_name", String(200), nullable=False),
    # The rule that fired (always, failed, ...) or "passwords".
    Column("trigger", String(40), nullable=False),
    # email or webhook.
    Column("channel", String(20), nullable=False),
    # An address, or the webhook URL.
    Column("recipient", String(500), nullable=False),
    # The identity store whose notification server sends an email (none for a webhook).
    Column("store_name", String(200), nullable=True),
    # SecretBox token of the message (subject, bodies, or the JSON event):
    # generated passwords travel here, so no message is kept in clear.
    Column("payload", Text, nullable=False),
    # pending, sending, sent, failed.
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    # The sender gives up (state failed) when an attempt fails after this instant.
    Column("expires_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(200), nullable=True),
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    # Nothing is sent twice: one message per run, rule, channel and recipient.
    UniqueConstraint("run_id", "trigger", "channel", "recipient"),
    Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
)

# Users, roles and API tokens (revision 0007). Passwords are argon2id hashes;
# a token is stored as the SHA-256 of its secret part, found by its prefix.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False, server_default=""),
    Column("email", String(320), nullable=True),
    # The operating-system account the CLI acts for as this user.
    Column("os_user", String(200), nullable=True, unique=True),
    Column("password_hash", Text, nullable=True),
    # local: signs in with its password; directory: by a bind to store_name as dn.
    Column("source", String(20), nullable=False, server_default="local"),
    Column("store_name", String(200), nullable=True),
    Column("dn", Text, nullable=True),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(20), primary_key=True),
    Column("granted_by", String(200), nullable=False),
    Column("granted_at", UTCDateTime, nullable=False),
)

role_groups = Table(
    "role_groups",
    metadata,
    Column("id", Integer, primary_key=True),
    # Members of group_dn in identity store store_name hold role.
    Column("store_name", String(200), nullable=False),
    Column("group_dn", Text, nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("store_name", "group_dn", "role"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    # The public start of the token, to find its row; the rest is only hashed.
    Column("prefix", String(32), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    UniqueConstraint("user_id", "name"),
)

# Workflow requests (revision 0007). A request waits on a run (the collection
# run it gates, or the held run it would release) and binds the plans its
# approvers see; its state is a cache of what its decision trail says.
requests = Table(
    "requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("collection_name", String(200), nullable=False),
    Column("store_name", String(200), nullable=False),
    # manual, schedule or held.
    Column("kind", String(20), nullable=False),
    # What raised it, in words (for a held run: the limit that held it).
    Column("reason", Text, nullable=False),
    Column("requested_by", String(200), nullable=False),
    # pending, approved, executed, denied, expired, cancelled.
    Column("state", String(20), nullable=False),
    Column("required_approvals", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("escalate_at", UTCDateTime, nullable=True),
    # 0 before escalation; each escalation step adds one.
    Column("escalation_step", Integer, nullable=False, server_default=text("0")),
    Column("plans_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("outcome", Text, nullable=True),
    Index("ix_requests_state", "state"),
    Index("ix_requests_run_id", "run_id"),
    Index("ix_requests_created_at", "created_at"),
    Index("ix_requests_state_created_at", "state", "created_at"),  # revision 0011: the inbox, newest first
)

Index(
    "uq_requests_pending_collection",
    requests.c.collection_name,
    unique=True,
    sqlite_where=requests.c.state == "pending",
    postgresql_where=requests.c.state == "pending",
)
"""At most one pending request per collection: requests never pile up."""

request_plans = Table(
    "request_plans",
    metadata,
    Column("request_id", Integer, ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("job_name", String(200), nullable=False),
    Column("plan_id", Integer, ForeignKey("plans.id", ondelete="SET NULL"), nullable=True),
    # What the job's source looked like when the plan was computed (file
    # metadata or a content hash): a different one now makes the plan stale.
    Column("source_fingerprint", Text, nullable=True),
    Column("computed_at", UTCDateTime, nullable=False),
)

request_decisions = Table(
    "request_decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    # No foreign key: the trail outlives what it speaks of, and is never
    # updated or deleted (the database refuses both).
    Column("request_id", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    # approve, deny, reroute, comment, cancel, repreview, escalate, expire, execute.
    Column("action", String(20), nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    # What was decided: the kinds of change approved, DNs excluded, whom re-routed to.
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_request_decisions_request_id", "request_id"),
)

# The head of each hash-chained table (revision 0008): its last row, that
# row's hash and how many rows it has, moved in the transaction of each
# append, so rows deleted from the end are seen too.
chain_heads = Table(
    "chain_heads",
    metadata,
    Column("table_name", String(100), primary_key=True),
    # 0, and the zero hash, while the table is empty.
    Column("last_id", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("count", Integer, nullable=False),
)

DEFINITION_TABLES: dict[str, Table] = {
    "store": identity_stores,
    "source": data_sources,
    "job": jobs,
    "collection": collections,
    "schedule": schedules,
    "smart_group": smart_groups,
    "smart_group_job": smart_group_jobs,
}
"""The table of each definition kind."""
