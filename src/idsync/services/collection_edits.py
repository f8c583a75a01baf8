"""Composing a job collection from a front end's answers: a new one, or an edit.

A front end collects what the user asked for (options, form fields, wizard
answers) into a :class:`NewCollection` or a :class:`CollectionEdit`; this
module turns it into a validated :class:`CollectionDefinition`, or refuses it
with a ConfigError naming the field. Saving still goes through the review in
:mod:`idsync.services.collections`, so nothing is written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from idsync.domain import collections as model
from idsync.domain.collections import ALL_NOTIFY_TRIGGERS, CollectionDefinition
from idsync.errors import ConfigError
from idsync.services import definitions

KEEP: Any = object()
"""An edit field left as it is (distinct from None, which may be a value: no schedule)."""


def on_failure_choice(value: str | None, *, field_name: str = "on_failure") -> model.OnFailure | None:
    """``abort`` or ``continue`` (or None when not given)."""
    if value is None:
        return None
    if value not in ("abort", "continue"):
        raise ConfigError(f"{field_name} {value!r}: use abort or continue", field=field_name)
    return value  # type: ignore[return-value]


def job_entry(text: str) -> dict[str, str]:
    """``hr`` or ``hr:continue`` as a collection entry."""
    job, _, on_failure = text.partition(":")
    return {"job": job, "on_failure": on_failure_choice(on_failure or None, field_name="jobs") or "abort"}


def _split(values: Sequence[str] | None) -> list[str]:
    return [item.strip() for value in values or () for item in value.split(",") if item.strip()]


def notifications(
    current: dict[str, Any], *, enabled: bool | None, recipients: Sequence[str] | None, triggers: Sequence[str] | None
) -> dict[str, Any]:
    """*current* notification settings with what was given replaced; recipients
    given turn notifications on unless *enabled* says otherwise. Each item
    given may hold several, separated by commas (``always,failed``)."""
    out = dict(current)
    recipients = _split(recipients)
    triggers = _split(triggers)
    if recipients:
        out["recipients"] = list(recipients)
        out.setdefault("enabled", True)
    if triggers:
        unknown = [t for t in triggers if t not in ALL_NOTIFY_TRIGGERS]
        if unknown:
            raise ConfigError(
                f"notification trigger {unknown[0]!r}: use one of {', '.join(ALL_NOTIFY_TRIGGERS)}",
                field="notifications.triggers",
            )
        out["triggers"] = list(triggers)
    if enabled is not None:
        out["enabled"] = enabled
    return out


@dataclass(frozen=True)
class NewCollection:
    """A collection as a front end's options describe it."""

    name: str
    jobs: Sequence[str]
    """In run order; ``JOB:continue`` goes on when the job fails."""
    description: str = ""
    owners: Sequence[str] = ()
    schedule: str | None = None
    notify_to: Sequence[str] = ()
    notify_on: Sequence[str] = ()
    preview_when_finished: bool = False
    overlap: str = "skip"


def new_collection(spec: NewCollection) -> CollectionDefinition:
    """The validated definition of *spec*."""
    parsed: CollectionDefinition = definitions.parse("collection", {
        "name": spec.name,
        "description": spec.description,
        "owners": list(spec.owners),
        "jobs": [job_entry(j) for j in spec.jobs],
        "schedule": spec.schedule,
        "notifications": notifications({}, enabled=None, recipients=spec.notify_to, triggers=spec.notify_on),
        "preview_when_finished": spec.preview_when_finished,
        "overlap": spec.overlap,
    })
    return parsed


@dataclass(frozen=True)
class CollectionEdit:
    """What to change in a stored collection; fields left at their default stay.

    Job list edits apply in this order: remove, add (at *position* or the
    end), move (to *position*), then *on_failure* of *job*.
    """

    add_job: str | None = None
    remove_job: str | None = None
    move_job: str | None = None
    job: str | None = None
    """The job whose on_failure to change."""
    on_failure: str | None = None
    position: int | None = None
    schedule: Any = KEEP
    """A schedule name, None for no schedule, or KEEP."""
    description: str | None = None
    owners: Sequence[str] = ()
    notify: bool | None = None
    notify_to: Sequence[str] = ()
    notify_on: Sequence[str] = ()
    preview_when_finished: bool | None = None
    overlap: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Other top-level fields to replace as they are."""


def edit_collection(current: CollectionDefinition, edit: CollectionEdit) -> CollectionDefinition:
    """*current* with *edit* applied and validated again; ConfigError naming what is wrong."""
    failure = on_failure_choice(edit.on_failure)
    updated = current
    try:
        if edit.remove_job is not None:
            updated = model.remove_job(updated, edit.remove_job)
        if edit.add_job is not None:
            updated = model.add_job(updated, edit.add_job, failure or "abort", edit.position)
        if edit.move_job is not None:
            if edit.position is None:
                raise ConfigError("moving a job needs its new position", field="position")
            updated = model.move_job(updated, edit.move_job, edit.position)
            if failure is not None:
                updated = model.set_on_failure(updated, edit.move_job, failure)
        if edit.job is not None:
            if failure is None:
                raise ConfigError(f"job {edit.job!r}: say abort or continue for on_failure", field="on_failure")
            updated = model.set_on_failure(updated, edit.job, failure)
        elif failure is not None and edit.add_job is None and edit.move_job is None:
            raise ConfigError("on_failure needs the job it is for (added, moved or named)", field="on_failure")
        changes = dict(edit.extra)
        if edit.schedule is not KEEP:
            changes["schedule"] = edit.schedule
        if edit.description is not None:
            changes["description"] = edit.description
        if edit.owners:
            changes["owners"] = list(edit.owners)
        if edit.notify is not None or edit.notify_to or edit.notify_on:
            changes["notifications"] = notifications(
                current.notifications.model_dump(), enabled=edit.notify, recipients=edit.notify_to,
                triggers=edit.notify_on,
            )
        if edit.preview_when_finished is not None:
            changes["preview_when_finished"] = edit.preview_when_finished
        if edit.overlap is not None:
            changes["overlap"] = edit.overlap
        if changes:
            updated = model.with_changes(updated, **changes)
    except ValidationError as exc:
        raise ConfigError(definitions.format_validation_error(exc, f"collection {current.name!r}")) from exc
    except ValueError as exc:
        raise ConfigError(f"collection {current.name!r}: {exc}") from exc
    return updated
