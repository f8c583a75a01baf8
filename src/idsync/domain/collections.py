"""Job collections: ordered sync jobs run as one unit, with their seed-page settings.

A collection lists jobs in the order they run; each entry says what happens
when its job fails: ``abort`` the rest (the default, the safe choice) or
``continue``. The settings of the seed page sit beside the jobs: a schedule
(by name, or none), smart group update jobs to run afterwards, notification
settings, and *preview when finished*. ``overlap`` says what a run does when
the previous run of the same collection is still going: ``skip`` (recorded
with the reason) or ``queue`` (at most one waiting).

The model checks structure only; whether the jobs and the schedule exist is
checked by :mod:`idsync.services.collections`. The editing helpers at the end
are pure: they return a new definition and leave the old one as it was, so a
front end can show the difference before anything is saved.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from idsync.domain.definitions import DefinitionModel, Name

OnFailure = Literal["abort", "continue"]
NotifyTrigger = Literal["always", "records_updated", "errors", "failed", "recovered", "missed", "held"]
Overlap = Literal["skip", "queue"]

NOTIFY_TRIGGERS: tuple[str, ...] = ("always", "records_updated", "errors", "failed")
"""The seed's four notification triggers: always, records are updated, one or
more errors occur, the job fails."""

EXTRA_NOTIFY_TRIGGERS: tuple[str, ...] = ("recovered", "missed", "held")
"""Triggers beyond the seed: the first success after a failure, scheduled runs
that did not start, a run held for approval or by a safety limit."""

ALL_NOTIFY_TRIGGERS: tuple[str, ...] = NOTIFY_TRIGGERS + EXTRA_NOTIFY_TRIGGERS
"""Every trigger a collection may choose, in the order messages are produced."""

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


class CollectionJob(DefinitionModel):
    """One entry of a collection: a job, and what a failure of it does to the rest."""

    job: Name
    on_failure: OnFailure = "abort"


class Notifications(DefinitionModel):
    """Who is told about a run, and when. Stored and validated here; delivered
    by the notification service."""

    enabled: bool = False
    recipients: list[str] = Field(default_factory=list)
    triggers: list[NotifyTrigger] = Field(default_factory=list)

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for address in value:
            if not _EMAIL.match(address) or len(address) > 254:
                raise ValueError(f"{address!r} is not an e-mail address (expected name@example.org)")
            if address.lower() in seen:
                raise ValueError(f"recipient {address!r} is listed twice")
            seen.add(address.lower())
        return value

    @field_validator("triggers", mode="before")
    @classmethod
    def _known(cls, value: Any) -> Any:
        """Name the seed's four and the extra triggers apart, so the choice reads plainly."""
        if isinstance(value, list):
            for name in value:
                if name not in ALL_NOTIFY_TRIGGERS:
                    seed = ", ".join(repr(t) for t in NOTIFY_TRIGGERS[:-1])
                    extra = ", ".join(repr(t) for t in EXTRA_NOTIFY_TRIGGERS[:-1])
                    raise ValueError(
                        f"unknown notification trigger {name!r}: use {seed} or {NOTIFY_TRIGGERS[-1]!r}, "
                        f"or beyond those {extra} or {EXTRA_NOTIFY_TRIGGERS[-1]!r}"
                    )
        return value

    @field_validator("triggers")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a notification trigger is listed twice")
        return value

    @model_validator(mode="after")
    def _complete(self) -> Notifications:
        if self.enabled:
            if not self.recipients:
                raise ValueError("notifications are enabled but have no recipients")
            if not self.triggers:
                raise ValueError(
                    f"notifications are enabled but have no trigger: choose from {', '.join(ALL_NOTIFY_TRIGGERS)}"
                )
        return self


class CollectionDefinition(DefinitionModel):
    """A job collection as users write it (YAML) and as it is stored (JSON)."""

    name: Name
    description: str = ""
    owners: list[str] = Field(default_factory=list)
    jobs: list[CollectionJob] = Field(default_factory=list)
    schedule: Name | None = None
    smart_group_jobs: list[str] = Field(default_factory=list)
    notifications: Notifications = Field(default_factory=Notifications)
    preview_when_finished: bool = False
    overlap: Overlap = "skip"

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    @field_validator("jobs", mode="before")
    @classmethod
    def _job_shorthand(cls, value: Any) -> Any:
        """``jobs: [hr, groups]`` is short for entries with the default on_failure."""
        if isinstance(value, list):
            return [{"job": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _jobs(self) -> CollectionDefinition:
        if not self.jobs:
            raise ValueError("no jobs: a collection needs at least one job")
        seen: set[str] = set()
        for entry in self.jobs:
            if entry.job in seen:
                raise ValueError(f"job {entry.job!r} is listed twice in jobs")
            seen.add(entry.job)
        if len(set(self.smart_group_jobs)) != len(self.smart_group_jobs):
            raise ValueError("a smart group update job is listed twice")
        return self

    @property
    def job_names(self) -> list[str]:
        return [entry.job for entry in self.jobs]

    def position_of(self, job: str) -> int:
        """The 1-based position of *job*; ValueError naming the collection when absent."""
        for index, entry in enumerate(self.jobs):
            if entry.job == job:
                return index + 1
        raise ValueError(f"job {job!r} is not in collection {self.name!r} (it has {', '.join(self.job_names)})")


# ---------------------------------------------------------------- pure edits


def _replace_jobs(collection: CollectionDefinition, jobs: list[CollectionJob]) -> CollectionDefinition:
    data = collection.model_dump()
    data["jobs"] = [entry.model_dump() for entry in jobs]
    return CollectionDefinition.model_validate(data)


def _check_position(position: int, size: int) -> int:
    if position < 1 or position > size:
        raise ValueError(f"position {position} is out of range: use 1 to {size}")
    return position - 1


def add_job(
    collection: CollectionDefinition,
    job: str,
    on_failure: OnFailure = "abort",
    position: int | None = None,
) -> CollectionDefinition:
    """*collection* with *job* added at 1-based *position* (default: at the end)."""
    if job in collection.job_names:
        raise ValueError(f"job {job!r} is already in collection {collection.name!r}")
    jobs = list(collection.jobs)
    index = len(jobs) if position is None else _check_position(position, len(jobs) + 1)
    jobs.insert(index, CollectionJob(job=job, on_failure=on_failure))
    return _replace_jobs(collection, jobs)


def remove_job(collection: CollectionDefinition, job: str) -> CollectionDefinition:
    """*collection* without *job*; removing the last job is refused (a collection needs one)."""
    index = collection.position_of(job) - 1
    jobs = [entry for i, entry in enumerate(collection.jobs) if i != index]
    if not jobs:
        raise ValueError(
            f"job {job!r} is the only job of collection {collection.name!r}: "
            "add another first, or remove the collection"
        )
    return _replace_jobs(collection, jobs)


def move_job(collection: CollectionDefinition, job: str, position: int) -> CollectionDefinition:
    """*collection* with *job* moved to 1-based *position*; the others keep their order."""
    index = collection.position_of(job) - 1
    target = _check_position(position, len(collection.jobs))
    jobs = list(collection.jobs)
    entry = jobs.pop(index)
    jobs.insert(target, entry)
    return _replace_jobs(collection, jobs)


def set_on_failure(collection: CollectionDefinition, job: str, on_failure: OnFailure) -> CollectionDefinition:
    """*collection* with the on_failure choice of *job* changed."""
    index = collection.position_of(job) - 1
    jobs = list(collection.jobs)
    jobs[index] = CollectionJob(job=job, on_failure=on_failure)
    return _replace_jobs(collection, jobs)


def with_changes(collection: CollectionDefinition, **changes: Any) -> CollectionDefinition:
    """*collection* with top-level fields replaced, validated again."""
    data = collection.model_dump()
    data.update(changes)
    return CollectionDefinition.model_validate(data)
