"""The job collection wizard [S9.3]: Jobs, Scheduling and Notifications,
Review your changes, Finish; at ``/collections/new`` and ``/collections/{name}/edit``.

It works without JavaScript and keeps nothing on the server between steps:
every answer travels in the form of each step (the step's own fields
visible, the others hidden), and every POST is CSRF-checked by
:data:`Posted`. Nothing is written before Finish, which saves through
:func:`collections.save_collection` (the operator role is the services'
check). A ConfigError from the services is shown on the step its field
belongs to, with every answer kept, so a wrong address costs one fix, not
the wizard again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fastapi import APIRouter, Request, Response

from idsync.domain.collections import ALL_NOTIFY_TRIGGERS, NOTIFY_TRIGGERS, CollectionDefinition
from idsync.domain.roles import Role
from idsync.errors import ConfigError
from idsync.portal.web import Form, PortalRoute, Posted, Viewer, Viewing, render, see_other
from idsync.services import authz, collections, definitions, schedules, smartgroups
from idsync.services.collection_edits import on_failure_choice
from idsync.services.review import Review

router = APIRouter(route_class=PortalRoute)

Step = Literal[1, 2, 3]
STEPS: dict[int, str] = {1: "Jobs", 2: "Scheduling and Notifications", 3: "Review your changes"}
TRIGGER_LABELS: dict[str, str] = {
    "always": "Always",
    "records_updated": "Records are updated",
    "errors": "One or more errors occur",
    "failed": "The job collection fails",
    "recovered": "It succeeds again after a failure",
    "missed": "A scheduled run did not start",
    "held": "A run is held for approval or by a safety limit",
}
FIELD_STEPS: dict[str, Step] = {
    "jobs": 1, "position": 1, "on_failure": 1,
    "schedule": 2, "smart_group_jobs": 2, "notifications": 2, "preview_when_finished": 2,
    "name": 3, "description": 3,
}
"""The step that asks for a field: where an error about it is shown."""
PLACEHOLDER = "new-collection"
"""The name a new collection is reviewed under until the user names it."""


@dataclass(frozen=True)
class Answers:
    """Everything the wizard asked so far; what each step's form carries."""

    jobs: list[tuple[str, str]] = field(default_factory=list)
    """(job, on_failure) in run order."""
    schedule: str = ""
    smart_group_jobs: list[str] = field(default_factory=list)
    notify: bool = False
    recipients: str = ""
    triggers: list[str] = field(default_factory=list)
    preview: bool = False
    name: str = ""
    description: str = ""
    version: str = ""
    """When editing, :func:`version_of` the stored collection the edit began from."""

    @property
    def recipient_list(self) -> list[str]:
        return [item.strip() for line in self.recipients.splitlines() for item in line.split(",") if item.strip()]


def version_of(collection: CollectionDefinition) -> str:
    """A short hash of a stored collection: an edit begun from another version is stale."""
    body = json.dumps(collection.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def answers_of(collection: CollectionDefinition) -> Answers:
    """The answers that describe a stored collection: where an edit starts."""
    return Answers(
        jobs=[(entry.job, entry.on_failure) for entry in collection.jobs],
        schedule=collection.schedule or "",
        smart_group_jobs=list(collection.smart_group_jobs),
        notify=collection.notifications.enabled,
        recipients="\n".join(collection.notifications.recipients),
        triggers=list(collection.notifications.triggers),
        preview=collection.preview_when_finished,
        name=collection.name,
        description=collection.description,
        version=version_of(collection),
    )


def read_answers(form: Form) -> Answers:
    """The answers a step's form carries (its own fields and the hidden ones alike)."""
    names, failures = form.all("job"), form.all("on_failure")
    jobs = [(job, failures[i] if i < len(failures) else "abort") for i, job in enumerate(names) if job]
    return Answers(
        jobs=jobs,
        schedule=form.get("schedule").strip(),
        smart_group_jobs=[name for name in form.all("smart_group_job") if name],
        notify=form.get("notify") == "yes",
        recipients=form.get("recipients"),
        triggers=[t for t in ALL_NOTIFY_TRIGGERS if t in set(form.all("trigger"))],
        preview=form.get("preview") == "yes",
        name=form.get("name").strip(),
        description=form.get("description"),
        version=form.get("version"),
    )


def compose(answers: Answers, current: CollectionDefinition | None) -> CollectionDefinition:
    """The definition the answers describe, validated by the services; an edit
    keeps the stored fields the wizard does not ask about (owners, overlap)."""
    for _job, on_failure in answers.jobs:
        on_failure_choice(on_failure)
    data: dict[str, Any] = current.model_dump(mode="json") if current is not None else {}
    data.update(
        name=current.name if current is not None else (answers.name or PLACEHOLDER),
        description=answers.description,
        jobs=[{"job": job, "on_failure": on_failure} for job, on_failure in answers.jobs],
        schedule=answers.schedule or None,
        smart_group_jobs=list(answers.smart_group_jobs),
        notifications={"enabled": answers.notify, "recipients": answers.recipient_list, "triggers": answers.triggers},
        preview_when_finished=answers.preview,
    )
    parsed: CollectionDefinition = definitions.parse("collection", data)
    return parsed


def step_of(exc: ConfigError) -> Step:
    """The step whose answers an error is about: by its field, else by the
    field path a validation message names (``notifications.recipients.0: ...``)."""
    if exc.field is not None:
        return FIELD_STEPS.get(exc.field.split(".")[0], 2)
    text = exc.message.split(": ", 1)[-1]
    for name, step in FIELD_STEPS.items():
        if text.startswith(name) or f"; {name}" in text:
            return step
    for name in ("notification", "schedule", "smart group"):
        if name in text:
            return 2
    return 1


@dataclass(frozen=True)
class Page:
    """One step as it is shown."""

    step: Step
    answers: Answers
    message: str | None = None
    review: Review | None = None


def _jobs_of_stores(who: Viewer) -> dict[str, str]:
    """Each job's destination store, by job name."""
    return {job.name: job.destination.store for job in definitions.list_definitions(who.ws, "job")}


def _show(request: Request, who: Viewer, current: CollectionDefinition | None, page: Page, status: int = 200) -> Response:
    action = "/collections/new" if current is None else f"/collections/{current.name}/edit"
    context: dict[str, Any] = {}
    chosen = [job for job, _ in page.answers.jobs]
    if page.step == 1:
        context["available"] = sorted(set(_jobs_of_stores(who)) - set(chosen))
    elif page.step == 2:
        stores = _jobs_of_stores(who)
        destinations = sorted({stores[job] for job in chosen if job in stores})
        context["destinations"] = destinations
        context["schedules"] = sorted(s.name for s in schedules.list_schedules(who.ws))
        context["update_jobs"] = [
            j for j in smartgroups.list_jobs(who.ws)
            if j.store in destinations or j.name in page.answers.smart_group_jobs
        ]
    return render(
        request, f"wizard_step{page.step}.html", who, status=status, page=page, a=page.answers, steps=STEPS,
        creating=current is None, current=current, action=action, triggers=ALL_NOTIFY_TRIGGERS,
        seed_triggers=NOTIFY_TRIGGERS, trigger_labels=TRIGGER_LABELS, **context,
    )


def _moved(answers: Answers, go: str) -> Answers | None:
    """The answers after a job-list button (add, up, down, remove), or None when *go* is none."""
    verb, _, index_text = go.partition(":")
    jobs = list(answers.jobs)
    if verb in ("up", "down", "remove") and index_text.isdigit() and int(index_text) < len(jobs):
        i = int(index_text)
        if verb == "remove":
            del jobs[i]
        else:
            j = i - 1 if verb == "up" else i + 1
            if 0 <= j < len(jobs):
                jobs[i], jobs[j] = jobs[j], jobs[i]
        return replace(answers, jobs=jobs)
    return None


def _advance(request: Request, who: Viewer, current: CollectionDefinition | None, form: Form) -> Response:
    """What a step's button asks for: a change of the job list, another step, or Finish."""
    answers = read_answers(form)
    go = form.get("go")
    if go == "add":
        job = form.get("add_job").strip()
        if job and job not in {j for j, _ in answers.jobs}:
            answers = replace(answers, jobs=[*answers.jobs, (job, form.get("add_on_failure") or "abort")])
        return _show(request, who, current, Page(1, answers))
    moved = _moved(answers, go)
    if moved is not None:
        return _show(request, who, current, Page(1, moved))
    if go in ("to:1", "to:2", "to:3", "finish"):
        wanted: Step = 3 if go == "finish" else int(go[3:])  # type: ignore[assignment]
        if wanted >= 2 and not answers.jobs:
            return _show(request, who, current, Page(1, answers, "add at least one job: a collection runs jobs"), 422)
        if wanted < 3:
            return _show(request, who, current, Page(wanted, answers))
        try:
            collection = compose(answers, current)
            review = collections.review_changes(who.ws, collection)
            if go == "finish" and current is not None and answers.version != version_of(current):
                fresh = replace(answers, version=version_of(current))
                text = (f"job collection {current.name!r} was changed by someone else since this edit began: "
                        "the differences below are from its new version; Finish again to save")
                return _show(request, who, current, Page(3, fresh, text, review), 409)
            if go == "finish":
                return _finish(request, who, current, answers, collection)
        except ConfigError as exc:
            text = exc.message + (f" ({exc.hint})" if exc.hint else "")
            return _show(request, who, current, Page(step_of(exc), answers, text), 422)
        return _show(request, who, current, Page(3, answers, review=review))
    return _show(request, who, current, Page(1, answers))


def _finish(
    request: Request, who: Viewer, current: CollectionDefinition | None, answers: Answers,
    collection: CollectionDefinition,
) -> Response:
    """Save, then show the preview when it was asked for, else the collection's page."""
    if current is None:
        if not answers.name:
            raise ConfigError("name the new collection", field="name")
        if collections.find_collection(who.ws, answers.name) is not None:
            raise ConfigError(f"a job collection named {answers.name!r} exists already: choose another name",
                              field="name", hint="or edit the existing one")
    outcome = collections.save_collection(who.ws, collection)
    if not answers.preview:
        return see_other(f"/collections/{collection.name}")
    preview = collections.preview_collection(who.ws, collection.name)
    return render(request, "wizard_preview.html", who, preview=preview, outcome=outcome, name=collection.name)


@router.get("/collections/new")
def new_collection(request: Request, who: Viewing) -> Response:
    authz.require(who.ws, Role.OPERATOR, "create job collections")
    return _show(request, who, None, Page(1, Answers()))


@router.post("/collections/new")
def new_collection_step(request: Request, who: Viewing, form: Posted) -> Response:
    authz.require(who.ws, Role.OPERATOR, "create job collections")
    return _advance(request, who, None, form)


@router.get("/collections/{name}/edit")
def edit_collection(request: Request, who: Viewing, name: str) -> Response:
    authz.require(who.ws, Role.OPERATOR, "edit job collections")
    _id, current = collections.load_collection(who.ws, name)
    return _show(request, who, current, Page(1, answers_of(current)))


@router.post("/collections/{name}/edit")
def edit_collection_step(request: Request, who: Viewing, form: Posted, name: str) -> Response:
    authz.require(who.ws, Role.OPERATOR, "edit job collections")
    _id, current = collections.load_collection(who.ws, name)
    return _advance(request, who, current, form)
