"""Create and edit identity stores and data sources: ``/stores/new``,
``/stores/{name}/edit``, ``/sources/new``, ``/sources/{name}/edit``.

One form per kind (LDAP, Active Directory, the embedded directory; CSV,
Excel, SQL), plain HTML that works without JavaScript. Its buttons post the
whole form with an action: *Test connection* (and, for a store, *Send test
message* through its notification server) try the definition as edited
without saving it; *Review changes* shows what saving would do, secrets
masked; *Save* saves it, unless someone changed it since the edit began.
Secret fields are write-only: never shown, left empty they keep the stored
secret, and one typed travels to the form's next step encrypted (so a
password typed before *Review changes* is the one *Save* saves).
Roles are the services' checks: operators edit, everyone else is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter, Request, Response

from idsync.domain.roles import Role
from idsync.errors import ConfigError, ConnectorError, StateConflictError
from idsync.portal.form_fields import (
    SOURCE_KINDS,
    STORE_KINDS,
    Section,
    body_kind,
    form_kind,
    read_body,
    shown,
    split_list,
)
from idsync.portal.web import Form, PortalRoute, Posted, Viewer, Viewing, render, see_other
from idsync.services import authz, definition_edits
from idsync.services.definitions import NOUNS, Kind
from idsync.services.review import Review

router = APIRouter(route_class=PortalRoute)

FORMS: dict[str, tuple[Kind, dict[str, tuple[str, tuple[Section, ...]]]]] = {
    "stores": ("store", STORE_KINDS),
    "sources": ("source", SOURCE_KINDS),
}


@dataclass(frozen=True)
class Screen:
    """A form as it is shown."""

    section: str
    kind: str
    creating: bool
    name: str
    body: dict[str, Any]
    version: str = ""
    stored_secrets: frozenset[str] = frozenset()
    sealed: str = ""
    message: str | None = None
    result: str | None = None
    failed: str | None = None
    review: Review | None = None
    test_to: str = ""


def _one_line(exc: ConfigError | ConnectorError | StateConflictError) -> str:
    return exc.message + (f" ({exc.hint})" if exc.hint else "")


def _show(request: Request, who: Viewer, screen: Screen, status: int = 200) -> Response:
    kind_of, kinds = FORMS[screen.section]
    title, sections = kinds[screen.kind]
    action = f"/{screen.section}/new" if screen.creating else f"/{screen.section}/{screen.name}/edit"
    return render(
        request, "definition_form.html", who, status=status, s=screen, noun=NOUNS[kind_of], kind_title=title,
        sections=sections, action=action, shown=shown,
    )


def _kind_chooser(request: Request, who: Viewer, section: str) -> Response:
    kind_of, kinds = FORMS[section]
    choices = [(kind, title) for kind, (title, _sections) in kinds.items()]
    return render(request, "definition_kinds.html", who, section=section, noun=NOUNS[kind_of], choices=choices)


def _editable_kind(section: str, body: dict[str, Any]) -> str:
    """The form kind of a stored body; ConfigError for a kind the portal has no form for."""
    kind_of, kinds = FORMS[section]
    kind = form_kind(section, body)
    if kind not in kinds:
        raise ConfigError(f"{NOUNS[kind_of]}s of kind {kind!r} have no form here",
                          hint="change it with idsync apply or the API")
    return kind


def _act(request: Request, who: Viewer, section: str, form: Form, name: str | None) -> Response:
    """What a button of the form asks for: test, send a test message, review, or save."""
    kind_of, kinds = FORMS[section]
    creating = name is None
    kind = form.get("kind")
    if creating:
        if kind not in kinds:
            raise ConfigError(f"choose a kind of {NOUNS[kind_of]}: {', '.join(kinds)}", field="kind")
        start: dict[str, Any] = {}
        name = form.get("name").strip()
        stored: frozenset[str] = frozenset()
    else:
        assert name is not None
        edit = definition_edits.editable(who.ws, kind_of, name)
        start, stored = edit.body, edit.stored_secrets
        kind = _editable_kind(section, start)
    body = read_body(form, kinds[kind][1], start)
    body.update(name=name, description=form.get("description"), **body_kind(kind))
    body = definition_edits.unseal(who.ws, kind_of, name, form.get("sealed"), body)
    screen = Screen(section, kind, creating, name, body, form.get("version"), stored,
                    test_to=form.get("test_to"))
    go = form.get("go")
    try:
        definition = definition_edits.compose(who.ws, kind_of, body, creating=creating)
        screen = replace(screen, sealed=definition_edits.seal(who.ws, kind_of, name, definition, body))
        if go in ("test", "notify-test"):
            return _tried(request, who, screen, definition, go)
        if creating:
            definition_edits.check_free(who.ws, kind_of, name)
        if go == "save":
            outcome = definition_edits.save_edited(who.ws, kind_of, definition, screen.version, creating=creating)
            return see_other(f"/{section}/{name}?saved={outcome}")
        review = definition_edits.review_changes(who.ws, kind_of, definition)
    except StateConflictError as exc:
        if creating:
            return _show(request, who, replace(screen, message=_one_line(exc)), 409)
        fresh = definition_edits.current_version(who.ws, kind_of, name) or ""
        review = definition_edits.review_changes(who.ws, kind_of, definition)
        text = _one_line(exc) + ": the differences below are from its new version; Save again to save over it"
        return _show(request, who, replace(screen, version=fresh, message=text, review=review),
                     409)
    except ConfigError as exc:
        return _show(request, who, replace(screen, message=_one_line(exc)), 422)
    return _show(request, who, replace(screen, review=review))


def _tried(request: Request, who: Viewer, screen: Screen, definition: Any, go: str) -> Response:
    """The answer of *Test connection* or *Send test message*, on the form as it was."""
    kind_of = FORMS[screen.section][0]
    try:
        if go == "test":
            detail = definition_edits.test_connection(who.ws, kind_of, definition)
            return _show(request, who, replace(screen, result=f"Connection succeeded: {detail}"))
        to = split_list(screen.test_to)
        if not to:
            raise ConfigError("type the address to send the test message to", field="test_to")
        detail = definition_edits.send_test_message(who.ws, definition, to)
        return _show(request, who, replace(screen, result=f"Test message sent: {detail}"))
    except ConnectorError as exc:
        what = "Connection failed" if go == "test" else "Test message not sent"
        return _show(request, who, replace(screen, failed=f"{what}: {_one_line(exc)}"))


def _routes(section: str) -> None:
    kind_of, kinds = FORMS[section]
    noun = NOUNS[kind_of]

    @router.get(f"/{section}/new", name=f"portal_new_{kind_of}")
    def new_form(request: Request, who: Viewing, kind: str = "") -> Response:
        authz.require(who.ws, Role.OPERATOR, f"create {noun}s")
        if kind not in kinds:
            return _kind_chooser(request, who, section)
        return _show(request, who, Screen(section, kind, True, "", body_kind(kind)))

    @router.post(f"/{section}/new")
    def new_posted(request: Request, who: Viewing, form: Posted) -> Response:
        authz.require(who.ws, Role.OPERATOR, f"create {noun}s")
        return _act(request, who, section, form, None)

    @router.get(f"/{section}/{{name}}/edit", name=f"portal_edit_{kind_of}")
    def edit_form(request: Request, who: Viewing, name: str) -> Response:
        authz.require(who.ws, Role.OPERATOR, f"edit {noun}s")
        edit = definition_edits.editable(who.ws, kind_of, name)
        kind = _editable_kind(section, edit.body)
        return _show(request, who, Screen(section, kind, False, name, edit.body, edit.version, edit.stored_secrets))

    @router.post(f"/{section}/{{name}}/edit")
    def edit_posted(request: Request, who: Viewing, form: Posted, name: str) -> Response:
        authz.require(who.ws, Role.OPERATOR, f"edit {noun}s")
        return _act(request, who, section, form, name)


for _section in FORMS:
    _routes(_section)
