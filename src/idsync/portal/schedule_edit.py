"""Creating a schedule and editing its triggers and settings, at
``/schedules/new`` and ``/schedules/{name}/edit``.

Like ``idsync schedule create`` and ``edit``, every change ends with the
review of what saving would do [S3.3]: the form posts its answers, the page
shows the review with the answers carried in hidden fields, and *Save*
posts them again with ``confirm``. The answers are read into a trigger by
:mod:`idsync.services.trigger_answers`, the text the command line accepts;
the edit applies through :func:`schedule_edits.edit_schedule`. The review
also carries the version of the stored schedule it was computed from, and
the save checks it in its own transaction: a save based on another version
is refused, never merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from idsync.errors import ConfigError
from idsync.portal.web import Form, PortalRoute, Posted, Viewer, Viewing, render, see_other
from idsync.services import definitions, schedules, trigger_answers
from idsync.services.schedule_edits import ScheduleEdit, edit_schedule, new_schedule
from idsync.services.trigger_answers import TriggerAnswers
from idsync.services.workspace import Workspace

router = APIRouter(route_class=PortalRoute)

TRIGGER_FIELDS = (
    "kind", "weekly", "monthly_day", "monthly_ordinal", "months", "once", "cron", "every", "at", "start", "tz",
    "expires", "repeat_every", "repeat_for", "stop_after",
)
SETTING_FIELDS = ("name", "description", "misfire", "grace", "disabled", "action", "replace_triggers")
KIND_LABELS = {
    "daily": "Daily, at a time of day",
    "weekly": "Weekly, on some weekdays",
    "monthly": "Monthly, on days of the month or an ordinal weekday",
    "once": "Once, at a date and time",
    "cron": "A cron expression",
    "startup": "When the scheduler starts",
}
LABELS = {
    "weekly": "Weekdays", "monthly_day": "Days of the month", "monthly_ordinal": "Ordinal weekday",
    "months": "Months", "once": "Date and time", "every": "Every", "at": "At", "start": "First day",
    "tz": "Time zone", "expires": "Expires",
}
"""How the form's labels name the fields in errors."""


@dataclass(frozen=True)
class Page:
    """What the form page shows besides the answers."""

    title: str
    action: str
    creating: bool
    review: Any = None
    error: str = ""
    error_field: str = ""
    version: str = ""
    current: Any = None


def version_of(ws: Workspace, name: str) -> str:
    """The stored schedule's version, as the API's ETag names it."""
    return definitions.version_of(definitions.exportable(ws, "schedule", name))


def _answers(form: Form) -> dict[str, str]:
    return {name: form.get(name) for name in (*TRIGGER_FIELDS, *SETTING_FIELDS, "version")}


def _trigger(values: dict[str, str]) -> dict[str, Any]:
    every = values.get("every", "").strip()
    if every and not every.isdigit():
        raise ConfigError(f"Every {every!r}: expected a whole number of days or weeks", field="every")
    answers = TriggerAnswers(
        kind=values.get("kind") or "daily",
        every=int(every) if every else None,
        tz=values.get("tz") or "UTC",
        **{name: (values.get(name) or "").strip() or None for name in TRIGGER_FIELDS
           if name not in ("kind", "every", "tz")},
    )
    return trigger_answers.trigger_data(answers, LABELS)


def _composed(values: dict[str, str], current: Any | None) -> Any:
    """The schedule the answers describe: a new one, or *current* edited."""
    if current is None:
        name = values.get("name", "").strip()
        if not name:
            raise ConfigError("give the schedule a name", field="name")
        return new_schedule(
            name, _trigger(values), description=values.get("description", ""),
            enabled=values.get("disabled") != "yes", misfire=values.get("misfire") or "run_once",
            grace=values.get("grace") or "1h",
        )
    action, _, number = values.get("action", "").partition(":")
    index = int(number) if number.isdigit() else None
    if action == "add":
        edit = ScheduleEdit(add=_trigger(values), replace_triggers=values.get("replace_triggers") == "yes")
    elif action == "remove":
        edit = ScheduleEdit(remove=index)
    elif action == "enable":
        edit = ScheduleEdit(enable=index)
    elif action == "disable":
        edit = ScheduleEdit(disable=index)
    elif action == "settings":
        edit = ScheduleEdit(description=values.get("description", ""), misfire=values.get("misfire") or None,
                            grace=values.get("grace") or None)
    else:
        raise ConfigError(f"unknown change {values.get('action')!r}", field="action")
    return edit_schedule(current, edit)


def _form(request: Request, who: Viewer, page: Page, values: dict[str, str], *, status: int = 200) -> Response:
    return render(request, "schedule_form.html", who, status=status, page=page, a=values,
                  kinds=KIND_LABELS, actions=[("run_once", "Run once"), ("skip", "Skip")])


@router.get("/schedules/new")
def new_form(request: Request, who: Viewing) -> Response:
    values = dict.fromkeys((*TRIGGER_FIELDS, *SETTING_FIELDS), "")
    values.update(kind="daily", at="02:00", tz="UTC", misfire="run_once", grace="1h")
    return _form(request, who, Page("New schedule", "/schedules/new", True), values)


@router.post("/schedules/new")
def create(request: Request, who: Viewing, form: Posted) -> Response:
    return _review_or_save(request, who, form, None)


@router.get("/schedules/{name}/edit")
def edit_form(request: Request, who: Viewing, name: str) -> Response:
    _id, current = schedules.load_schedule(who.ws, name)
    values = dict.fromkeys((*TRIGGER_FIELDS, *SETTING_FIELDS), "")
    values.update(kind="daily", at="02:00", tz=schedules.zone_of(current), misfire=current.misfire,
                  grace=_duration_text(current.grace), description=current.description, name=name)
    return _form(request, who, Page(f"Edit schedule {name}", f"/schedules/{name}/edit", False,
                                    version=version_of(who.ws, name), current=schedules.detail(who.ws, name)), values)


@router.post("/schedules/{name}/edit")
def edit(request: Request, who: Viewing, form: Posted, name: str) -> Response:
    _id, current = schedules.load_schedule(who.ws, name)
    return _review_or_save(request, who, form, current)


def _review_or_save(request: Request, who: Viewer, form: Form, current: Any | None) -> Response:
    values = _answers(form)
    creating = current is None
    name = "" if current is None else current.name

    def page(**shown: Any) -> Page:
        """The form page again; the stored version and next runs are read only to show them."""
        return Page(
            "New schedule" if creating else f"Edit schedule {name}",
            "/schedules/new" if creating else f"/schedules/{name}/edit", creating,
            version="" if creating else version_of(who.ws, name),
            current=None if creating else schedules.detail(who.ws, name), **shown,
        )

    try:
        schedule = _composed(values, current)
        review = schedules.review_changes(who.ws, schedule)
        if form.get("confirm") != "yes" or not review.has_changes:
            return _form(request, who, page(review=review), values)
        schedules.save_schedule(who.ws, schedule, based_on=None if creating else [values.get("version", "")])
    except ConfigError as exc:
        return _form(request, who, page(error=exc.message, error_field=exc.field or ""), values, status=422)
    return see_other(f"/schedules/{schedule.name}?saved=1")


def _duration_text(value: Any) -> str:
    seconds = int(schedules.seconds(value))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
