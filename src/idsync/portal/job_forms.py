"""Create and edit sync jobs: ``/jobs/new`` and ``/jobs/{name}/edit``, with
the mapping editor and "Try it".

Without JavaScript, every editor button posts the whole form with an action
(``go``) and gets it back changed: add, move or remove a mapping, add, move
or remove a transform step of one. Nothing is kept on the server between
posts. *Try it* maps the first rows of the source with the mappings as
edited (:func:`job_trial.try_job`, writing nothing) and shows the entries
and the rows that fail; *Review changes* shows what saving would do;
*Save* saves unless the job changed since the edit began. Settings the
form does not show (passwords, limits, update mode...) are kept as stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter, Request, Response

from idsync.domain.roles import Role
from idsync.errors import ConfigError, ConnectorError, StateConflictError
from idsync.portal.form_fields import Field, Section, read_body, shown, split_list
from idsync.portal.web import Form, PortalRoute, Posted, Viewer, Viewing, render, see_other
from idsync.services import authz, definition_edits, definitions, job_trial
from idsync.services.job_trial import Trial
from idsync.services.review import Review

router = APIRouter(route_class=PortalRoute)

ORIGINS: dict[str, str] = {"from": "source field", "value": "fixed value", "join": "fields joined", "expression": "expression"}
HINTS: dict[str, str] = {
    "from": "a field of the source, e.g. email",
    "value": "a fixed value, e.g. Staff or %ENV:DOMAIN%",
    "join": "fields joined with a space, e.g. first, last",
    "expression": "an expression, e.g. source['first'].lower()",
}
"""What each kind of origin takes, shown in the empty text field."""
EDITED = frozenset({"attribute", "from", "value", "join", "expression", "transforms", "key", "required", "new_only"})
"""The fields of a mapping the editor shows; the others travel unchanged with it."""
TRY_PLACEHOLDER = "new-job"

SOURCE = Section("Source", (
    Field("source.data_source", "Data source", "select", help="a CSV, Excel or SQL source"),
    Field("source.store", "Or read an identity store (directory source)", "select"),
    Field("source.base_dn", "Base DN to read (directory source)"),
    Field("source.filter", "Filter (directory source)", help="default (objectClass=*)"),
))
DESTINATION = Section("Destination", (
    Field("destination.store", "Identity store", "select"),
    Field("destination.container", "Container DN of new objects"),
    Field("destination.object_type", "Object type", "select", ("user", "group", "contact", "custom"), default="user"),
    Field("destination.object_classes", "Object classes (custom type)", "list"),
    Field("destination.rdn_attribute", "Naming attribute", help="default: uid for users, cn otherwise"),
    Field("destination.create_container", "Create the container when missing", "checkbox", default=False),
))
ACTIONS = Section("Actions", (
    Field("actions.on_new", "A record without an object", "select", ("create", "skip"), default="create"),
    Field("actions.on_missing", "An object without a record", "select", ("skip", "delete", "disable", "move"),
          default="skip"),
    Field("actions.move_to", "Move missing objects to (DN)"),
))
SECTIONS = (SOURCE, DESTINATION, ACTIONS)


@dataclass(frozen=True)
class MappingRow:
    """One mapping as the editor shows it."""

    attribute: str = ""
    origin: str = "from"
    text: str = ""
    key: bool = False
    required: bool = False
    new_only: bool = False
    transforms: tuple[str, ...] = ()
    extra: str = ""
    """JSON of the mapping's other fields (resolve, multi_value_delimiter, a join's separator)."""


def row_of(mapping: dict[str, Any]) -> MappingRow:
    """A stored mapping (plain data) as an editor row."""
    origin = next((o for o in ORIGINS if mapping.get(o) is not None), "from")
    value = mapping.get(origin)
    extra = {k: v for k, v in mapping.items() if k not in EDITED}
    if origin == "join" and isinstance(value, dict):
        text = ", ".join(value.get("fields", []))
        if "separator" in value:
            extra["join_separator"] = value["separator"]
    else:
        text = str(value or "")
    return MappingRow(
        attribute=str(mapping.get("attribute", "")), origin=origin, text=text, key=bool(mapping.get("key")),
        required=bool(mapping.get("required")), new_only=bool(mapping.get("new_only")),
        transforms=tuple(definition_edits.step_text(s) for s in mapping.get("transforms", [])),
        extra=json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else "",
    )


def mapping_of(row: MappingRow) -> dict[str, Any]:
    """An editor row as a mapping (plain data) to validate."""
    label = f"mapping {row.attribute!r}" if row.attribute else "a mapping"
    extra: dict[str, Any] = {}
    if row.extra:
        try:
            loaded = json.loads(row.extra)
        except ValueError as exc:
            raise ConfigError(f"{label}: its other settings could not be read", hint="reload the job") from exc
        extra = loaded if isinstance(loaded, dict) else {}
    separator = extra.pop("join_separator", None)
    out: dict[str, Any] = {"attribute": row.attribute, **extra}
    if row.origin == "join":
        out["join"] = {"fields": split_list(row.text), **({"separator": separator} if separator is not None else {})}
    elif row.origin in ORIGINS:
        out[row.origin] = row.text
    else:
        raise ConfigError(f"{label}: choose where its value comes from: {', '.join(ORIGINS)}")
    steps = [definition_edits.parse_step(t, label) for t in row.transforms if t.strip()]
    if steps:
        out["transforms"] = steps
    for flag in ("key", "required", "new_only"):
        if getattr(row, flag):
            out[flag] = True
    return out


def read_rows(form: Form) -> list[MappingRow]:
    """The mapping rows a posted form carries, in order."""
    count = int(form.get("mappings")) if form.get("mappings").isdigit() else 0
    rows = []
    for i in range(min(count, 500)):
        p = f"m{i}."
        rows.append(MappingRow(
            attribute=form.get(p + "attribute").strip(), origin=form.get(p + "origin") or "from",
            text=form.get(p + "text"), key=form.get(p + "key") == "yes", required=form.get(p + "required") == "yes",
            new_only=form.get(p + "new_only") == "yes", transforms=tuple(form.all(p + "t")), extra=form.get(p + "extra"),
        ))
    return rows


def _swap(items: list[Any], i: int, j: int) -> None:
    if 0 <= i < len(items) and 0 <= j < len(items):
        items[i], items[j] = items[j], items[i]


def edited_rows(rows: list[MappingRow], go: str, form: Form) -> list[MappingRow] | None:
    """The rows after an editor button (*go*), or None when *go* is not one."""
    verb, _, where = go.partition(":")
    parts = [int(p) for p in where.split(":") if p.isdigit()] if where else []
    out = list(rows)
    if verb == "m-add":
        return [*out, MappingRow()]
    if not parts or parts[0] >= len(out):
        return None
    i = parts[0]
    if verb in ("m-up", "m-down"):
        _swap(out, i, i - 1 if verb == "m-up" else i + 1)
    elif verb == "m-remove":
        del out[i]
    elif verb == "t-add":
        out[i] = replace(out[i], transforms=(*out[i].transforms, form.get(f"m{i}.newt").strip()))
    elif verb in ("t-up", "t-down", "t-remove") and len(parts) == 2 and parts[1] < len(out[i].transforms):
        steps, j = list(out[i].transforms), parts[1]
        if verb == "t-remove":
            del steps[j]
        else:
            _swap(steps, j, j - 1 if verb == "t-up" else j + 1)
        out[i] = replace(out[i], transforms=tuple(steps))
    else:
        return None
    return out


@dataclass(frozen=True)
class JobScreen:
    """The job form as it is shown."""

    creating: bool
    name: str
    body: dict[str, Any]
    rows: list[MappingRow]
    version: str = ""
    try_rows: str = str(job_trial.DEFAULT_ROWS)
    message: str | None = None
    trial: Trial | None = None
    review: Review | None = None


def _show(request: Request, who: Viewer, screen: JobScreen, status: int = 200) -> Response:
    sources = [s.name for s in definitions.list_definitions(who.ws, "source")]
    stores = [s.name for s in definitions.list_definitions(who.ws, "store")]
    choices = {"source.data_source": ["", *sources], "source.store": ["", *stores], "destination.store": stores}
    action = "/jobs/new" if screen.creating else f"/jobs/{screen.name}/edit"
    return render(
        request, "job_form.html", who, status=status, s=screen, sections=SECTIONS, choices=choices, shown=shown,
        origins=ORIGINS, hints=HINTS, action=action, most_rows=job_trial.MOST_ROWS,
    )


def _with_mappings(screen: JobScreen) -> dict[str, Any]:
    """The job's body to validate: the form's fields and its mapping rows."""
    return {**screen.body, "mappings": [mapping_of(row) for row in screen.rows]}


def _act(request: Request, who: Viewer, form: Form, name: str | None) -> Response:
    creating = name is None
    if creating:
        start: dict[str, Any] = {}
        name = form.get("name").strip()
    else:
        assert name is not None
        start = definition_edits.editable(who.ws, "job", name).body
    go = form.get("go")
    rows = read_rows(form)
    body = read_body(form, SECTIONS, start)
    body.update(name=name, description=form.get("description"))
    screen = JobScreen(creating, name, body, rows, form.get("version"), form.get("try_rows") or "5")
    changed = edited_rows(rows, go, form)
    if changed is not None:
        return _show(request, who, replace(screen, rows=changed))
    try:
        if go == "try":
            return _tried(request, who, screen)
        job = definition_edits.compose(who.ws, "job", _with_mappings(screen), creating=creating)
        if creating:
            definition_edits.check_free(who.ws, "job", job.name)
        if go == "save":
            outcome = definition_edits.save_edited(who.ws, "job", job, screen.version, creating=creating)
            return see_other(f"/jobs/{job.name}?saved={outcome}")
        return _show(request, who, replace(screen, review=definition_edits.review_changes(who.ws, "job", job)))
    except StateConflictError as exc:
        text = exc.message + (f" ({exc.hint})" if exc.hint else "")
        if creating:
            return _show(request, who, replace(screen, message=text), 409)
        job = definition_edits.compose(who.ws, "job", _with_mappings(screen))
        review = definition_edits.review_changes(who.ws, "job", job)
        fresh = definition_edits.current_version(who.ws, "job", name) or ""
        text += ": the differences below are from its new version; Save again to save over it"
        return _show(request, who, replace(screen, version=fresh, review=review, message=text), 409)
    except ConfigError as exc:
        text = exc.message + (f" ({exc.hint})" if exc.hint else "")
        return _show(request, who, replace(screen, message=text), 422)


def _tried(request: Request, who: Viewer, screen: JobScreen) -> Response:
    """Try it: the mappings as edited applied to the first rows of the source."""
    text = screen.try_rows.strip()
    if not text.isdigit():
        raise ConfigError(f"rows to try: give a number from 1 to {job_trial.MOST_ROWS}", field="rows")
    body = {**_with_mappings(screen), "name": screen.name or TRY_PLACEHOLDER}
    job = definition_edits.compose(who.ws, "job", body, creating=screen.creating)
    try:
        trial = job_trial.try_job(who.ws, job, int(text))
    except ConnectorError as exc:
        raise ConfigError(f"the source could not be read: {exc.message}", hint=exc.hint) from exc
    return _show(request, who, replace(screen, trial=trial))


@router.get("/jobs/new")
def new_job(request: Request, who: Viewing) -> Response:
    authz.require(who.ws, Role.OPERATOR, "create sync jobs")
    return _show(request, who, JobScreen(True, "", {}, [MappingRow(key=True)]))


@router.post("/jobs/new")
def new_job_posted(request: Request, who: Viewing, form: Posted) -> Response:
    authz.require(who.ws, Role.OPERATOR, "create sync jobs")
    return _act(request, who, form, None)


@router.get("/jobs/{name}/edit")
def edit_job(request: Request, who: Viewing, name: str) -> Response:
    authz.require(who.ws, Role.OPERATOR, "edit sync jobs")
    edit = definition_edits.editable(who.ws, "job", name)
    rows = [row_of(m) for m in edit.body.get("mappings", [])]
    return _show(request, who, JobScreen(False, name, edit.body, rows, edit.version))


@router.post("/jobs/{name}/edit")
def edit_job_posted(request: Request, who: Viewing, form: Posted, name: str) -> Response:
    authz.require(who.ws, Role.OPERATOR, "edit sync jobs")
    return _act(request, who, form, name)
