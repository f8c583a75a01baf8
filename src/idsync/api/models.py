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


class AppliedItem(BaseModel):
    kind: str
    name: str
    outcome: Outcome
    warning: str | None = None


class Applied(BaseModel):
    """What applying a definitions file saved, in the order it saved them."""

    items: list[AppliedItem]

