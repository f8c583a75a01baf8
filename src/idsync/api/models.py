"""Response models: what each route answers, so the OpenAPI document describes it.

The handlers build their answers from what the services return, made plain
by :func:`idsync.domain.plain.to_plain` (the rules the CLI's ``--json``
follows too); these models name and type the fields a client relies on.
Models of records that grow with the product (a run, a request) allow
fields beyond the ones listed, so a new field never breaks an answer.
Timestamps are ISO 8601 strings in UTC.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["created", "updated", "unchanged"]


class Open(BaseModel):
    """A record whose listed fields are always there; others may follow."""

    model_config = ConfigDict(extra="allow")


class Saved(BaseModel):
    """A definition saved: its name, what the save did, and a warning when it could not all be checked."""

    name: str
    outcome: Outcome
    warning: str | None = None


class Removed(BaseModel):
    name: str
    outcome: Literal["removed"] = "removed"


class Definition(Open):
    """A definition as an export shows it (secrets left out, ``env:NAME`` references kept)."""

    name: str


class DefinitionPage(BaseModel):
    items: list[Definition]
    next_cursor: str | None = Field(description="The cursor of the next page; null on the last.")


class Run(Open):
    """A run: of a job, a collection, a smart group or an update job."""

    id: int
    kind: str
    job_name: str
    state: str
    trigger: str
    requested_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    counts: dict[str, int]
    error: str | None
    plan_id: int | None = None


class GroupPlan(BaseModel):
    """What updating one smart group would do now, or why it would not be updated."""

    group: str
    dn: str
    member_attribute: str
    current: int
    members: int
    add: list[str]
    remove: list[str]
    refused: str | None = None
    limit: str | None = Field(default=None, description="The limit that refused it: allow_empty, max_members or guard.")
    error: str | None = None


class GroupResult(BaseModel):
    """One group's outcome in an update run: updated, unchanged, refused, failed or held."""

    group: str
    dn: str
    outcome: str
    members: int
    added: int
    removed: int
    added_dns: list[str]
    removed_dns: list[str]
    error: str | None = None


class UpdateReport(BaseModel):
    """An update run and what it did to each group."""

    run: Run
    groups: list[GroupResult]
    run_url: str


class Reason(BaseModel):
    kind: str = Field(description="exclude, include, query, join or entry.")
    matched: bool
    text: str


class MemberExplanation(BaseModel):
    """Why an entry is or is not a member, and whether the group lists it now."""

    dn: str
    member: bool
    summary: str
    reasons: list[Reason]
    in_group_now: bool | None = Field(description="Whether the group entry lists it now; null when unknown.")
    pending_change: str | None = Field(description="What the next update does about it, if anything.")


class JobTargets(BaseModel):
    """The smart groups an update job targets now."""

    name: str
    targets: list[str]


class Base64Value(BaseModel):
    """A binary attribute value (not UTF-8)."""

    base64: str


class Entry(BaseModel):
    """A directory entry: its DN and attributes (binary values in base64)."""

    dn: str
    attributes: dict[str, list[str | Base64Value]]


class EntryPage(BaseModel):
    items: list[Entry]
    next_cursor: str | None = Field(description="The cursor of the next page; null on the last.")


class ImportRecord(BaseModel):
    """One record's fate: ``error`` null when it was applied (in a dry run: would be)."""

    line: int | None
    action: str = Field(description="add, modify, delete, rename, or read (a record that could not be read).")
    dn: str
    error: str | None = None
    detail: str = Field(default="", description="What a dry run would do.")


class ImportReport(BaseModel):
    """The counts of an LDIF import, and its records (those that failed first)."""

    added: int
    modified: int
    deleted: int
    renamed: int
    failed: int
    dry_run: bool
    stopped: bool = Field(description="It stopped at the first failure (stop_on_error).")
    left_out: list[str] = Field(description="Attributes left out of adds: the directory sets them itself.")
    summary: str
    records: list[ImportRecord]
    records_not_listed: int = Field(description="Records beyond the number listed.")


class Container(BaseModel):
    dn: str
    created: list[str] = Field(description="The containers created, top down (none when it existed).")


class GeneratedPassword(BaseModel):
    dn: str
    key: str
    password: str
    recipients: list[str]


class WaitingPasswords(BaseModel):
    run_id: int
    waiting: int = Field(description="Generated passwords not shown or delivered yet.")


class RunPasswords(BaseModel):
    """The passwords a run generated, shown once: they are deleted as they are given."""

    run_id: int
    passwords: list[GeneratedPassword]


class SchemaRevision(BaseModel):
    current: str | None = Field(description="The database's schema revision; null for an empty database.")
    head: str = Field(description="The revision this idsync needs.")
    up_to_date: bool


class SettingItem(BaseModel):
    name: str
    env_var: str = Field(description="The IDSYNC_* environment variable that sets it.")
    value: str = Field(description="The value in effect; a secret only as (set), a URL's password as ***.")
    source: str = Field(description="environment or default.")
    help: str


class AppliedItem(BaseModel):
    kind: str
    name: str
    outcome: Outcome
    warning: str | None = None


class Applied(BaseModel):
    """What applying a definitions file saved, in the order it saved them."""

    items: list[AppliedItem]



# ---------------------------------------------------------------- sessions and status


class SessionInfo(BaseModel):
    """A signed-in session: its user, roles, and the CSRF token its changes send in X-CSRF-Token."""

    user: str
    roles: list[str]
    csrf_token: str


class WhoAmI(BaseModel):
    name: str
    kind: str = Field(description="user, token or system.")
    user: str | None
    roles: list[str]
    disabled: bool


class NextRun(Open):
    schedule: str
    at: str
    targets: list[str]


class Status(Open):
    """The installation as the caller may see it."""

    actor: str
    roles: list[str]
    runs_recent: dict[str, int] = Field(description="Runs of the last 24 hours by state.")
    active: list[Run]
    failed: list[Run]
    next_runs: list[NextRun]
    outbox: dict[str, int]
    inbox: int | None = Field(description="Requests waiting for my decision; null for who is not an approver.")


class ConnectionTest(Open):
    """A store's or a source's connection test: ``store`` or ``source`` names it."""

    ok: bool
    detail: str


# ---------------------------------------------------------------- long work


class PreviewStarted(BaseModel):
    plan_id: int
    state: str
    url: str = Field(description="The plan, to follow.")


class RunStarted(Open):
    run_id: int
    state: str
    url: str = Field(description="The run's report, to follow.")
    events: str = Field(description="Its live progress, as server-sent events.")


class TaskStarted(BaseModel):
    task_id: int
    state: str
    url: str = Field(description="The task, to follow.")


class Task(Open):
    """Long work without a resource of its own: ``result`` once succeeded, ``problem`` once failed."""

    task_id: int
    kind: str
    state: Literal["running", "succeeded", "failed"]


class ScheduleRun(Open):
    run_id: int
    collection: str
    state: str
    url: str


class ScheduleRunsStarted(BaseModel):
    schedule: str
    runs: list[ScheduleRun]


class ScheduleEnabled(Open):
    schedule: str
    enabled: bool


class ScheduleStatus(Open):
    name: str
    enabled: bool
    targets: list[str]
    next_run: str | None
    last_run: str | None


class ScheduleDetail(Open):
    status: ScheduleStatus
    definition: dict[str, object]
    upcoming: list[str]


# ---------------------------------------------------------------- runs and plans


class RunPage(BaseModel):
    items: list[Run]
    next_cursor: str | None = Field(description="The cursor of the next page; null on the last.")


class Request(Open):
    """A workflow request: a run waiting for approval."""

    id: int
    run_id: int
    collection_name: str
    requested_by: str
    state: str = Field(description="pending, approved, executed, denied, expired or cancelled.")
    required_approvals: int
    created_at: str
    expires_at: str


class RunReport(BaseModel):
    """A run's report: its counts, errors, log, its job runs (a collection's) and its request."""

    run: Run
    errors: list[dict[str, object]]
    error_total: int
    log: list[dict[str, object]]
    jobs: list[dict[str, object]]
    request: Request | None
    plan: str | None = Field(description="The plan it applied, when it has one.")


class Plan(Open):
    id: int
    job_name: str
    state: str
    created_at: str
    counts: dict[str, int]
    change_count: int


class PlanPage(BaseModel):
    items: list[Plan]
    next_cursor: str | None = Field(description="The cursor of the next page; null on the last.")


class PlanReport(BaseModel):
    plan: Plan
    errors: list[dict[str, object]]
    error_total: int
    changes: str = Field(description="Its changes, paged.")


class Change(Open):
    """One change of a plan: its operation, DN and key; attributes or modifications."""

    op: str
    dn: str
    key: str


class ChangePage(BaseModel):
    items: list[Change]
    next_cursor: str | None = Field(description="The cursor of the next page; null on the last.")


# ---------------------------------------------------------------- requests


class RequestPage(BaseModel):
    items: list[Request]
    next_cursor: str | None = Field(description="The cursor of the next page; null on the last.")


class Count(BaseModel):
    count: int


class RequestDetail(Open):
    """A request with its plans (counts, staleness), decision trail, status and who may decide."""

    request: Request
    plans: list[dict[str, object]]
    trail: list[dict[str, object]]
    eligible: list[str]


class Decided(BaseModel):
    """A request after a decision, and the run it executed, if it did."""

    request: Request
    run: Run | None
    run_url: str | None


# ---------------------------------------------------------------- users, tokens, audit, outbox


class Grant(Open):
    role: str


class User(Open):
    """A user: its grants (and roles), its tokens (never a secret), whether it has a password."""

    user: dict[str, object]
    grants: list[Grant]
    tokens: list[dict[str, object]]
    has_password: bool
    roles: list[str]


class UserRow(Open):
    id: int
    name: str
    disabled: bool


class RolesChanged(Open):
    user: str


class RoleGroup(Open):
    id: int
    store_name: str
    group_dn: str
    role: str


class Token(Open):
    """An API token (never its secret)."""

    id: int
    user_name: str
    name: str
    prefix: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None


class NewToken(Token):
    token: str = Field(description="The token itself: shown this once.")


class AuditEntry(Open):
    id: int
    at: str
    actor: str
    action: str
    object_kind: str
    object_name: str
    detail: dict[str, object]


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = Field(description="The cursor of the next page; null on the last.")


class AuditCheck(Open):
    intact: bool
    trails: list[dict[str, object]]
    missing_heads: list[object]


class OutboxMessage(Open):
    """A message of the outbox (never its contents)."""

    id: int
    run_id: int
    channel: str
    recipient: str
    state: str
    attempts: int
    created_at: str


class OutboxPage(BaseModel):
    items: list[OutboxMessage]
    next_cursor: str | None = Field(description="The cursor of the next page; null on the last.")


class Retried(BaseModel):
    retried: int


class Purged(BaseModel):
    purged: int
