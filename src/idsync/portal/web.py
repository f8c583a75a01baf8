"""What every page shares: who views it, the CSRF check of its forms, the
templates, the security headers, and the error pages.

- :func:`viewer` (a dependency) is the signed-in user, read from the API's
  signed session cookie; without one, the page answers a redirect to the
  sign-in page with ``next=`` the page asked for.
- :func:`posted` (a dependency of every POST) reads the url-encoded form
  and checks its ``csrf_token`` field against the session's token: a form
  without it is refused (403) before the handler runs.
- :class:`PortalRoute` turns what a handler raises into a page: an idsync
  error into an error page whose status is chosen by the error's class (as
  the API does), and adds the security headers (a strict CSP: no inline
  script or style) to every answer.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlsplit

import jinja2
from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from idsync.api.auth import api_state, current_session
from idsync.api.errors import status_of
from idsync.domain.principals import Principal
from idsync.domain.results import Counts
from idsync.errors import IdsyncError
from idsync.services import authz, requests
from idsync.services.workspace import Workspace

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
CSRF_FIELD = "csrf_token"
SIGN_IN_PATH = "/signin"
MAX_FORM_BYTES = 1_000_000

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(value: dt.datetime | None) -> str:
    """A stored instant (UTC) as the pages show it."""
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def count_items(counts: Counts | None) -> list[tuple[str, int]]:
    """The counts that are not zero, for a table."""
    return [(name.replace("_", " "), number) for name, number in (counts.to_dict() if counts else {}).items() if number]


TEMPLATES.filters["when"] = when
TEMPLATES.filters["count_items"] = count_items


class SignInNeeded(Exception):
    """The page needs a signed-in user; *next* is where to come back to."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(Exception):
    """A form came without its session's CSRF token."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in user a page is for: the workspace acting for it, its
    roles, the CSRF token its forms carry, and its inbox count."""

    ws: Workspace
    user: str
    csrf: str
    roles: frozenset[str]
    inbox: int

    def has(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class Form:
    """A posted url-encoded form (its CSRF token checked)."""

    fields: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))


def safe_next(value: str | None) -> str:
    """*value* when it is a path on this site, else the dashboard: a sign-in
    never sends anyone to another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return "/"
    return value


def _asked_for(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def read_viewer(request: Request) -> Viewer | None:
    """The signed-in user of *request*, or None."""
    session = current_session(request)
    if session is None:
        return None
    ws = api_state(request).ws.acting_as(Principal(session.user, "user"))
    roles = frozenset(role.value for role in authz.rights(ws).roles)
    return Viewer(ws, session.user, session.csrf, roles, requests.inbox_count(ws))


def viewer(request: Request) -> Viewer:
    """Dependency: the signed-in user, or a redirect to the sign-in page."""
    found = read_viewer(request)
    if found is None:
        raise SignInNeeded(_asked_for(request))
    return found


async def posted(request: Request) -> Form:
    """Dependency of every POST: its form, once its CSRF token is the session's."""
    body = await request.body()
    fields: dict[str, list[str]] = {}
    if len(body) <= MAX_FORM_BYTES:
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            fields.setdefault(name, []).append(value)
    session = current_session(request)
    if session is None:
        raise SignInNeeded((request.headers.get("referer") and urlsplit(request.headers["referer"]).path) or "/")
    sent = (fields.get(CSRF_FIELD) or [""])[0]
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise CsrfRefused()
    return Form(fields)


Viewing = Annotated[Viewer, Depends(viewer)]
Posted = Annotated[Form, Depends(posted)]


def render(request: Request, template: str, who: Viewer | None, *, status: int = 200, **context: Any) -> HTMLResponse:
    """*template* rendered for *who*, with the layout's context."""
    html = TEMPLATES.get_template(template).render(
        viewer=who, path=request.url.path, csrf_field=CSRF_FIELD, **context
    )
    return HTMLResponse(html, status_code=status)


def see_other(path: str) -> RedirectResponse:
    """The answer to a form that did its work: go and look (POST, then GET)."""
    return RedirectResponse(path, status_code=303)


def error_page(request: Request, who: Viewer | None, status: int, title: str, message: str,
               hint: str | None = None) -> HTMLResponse:
    return render(request, "error.html", who, status=status, title=title, message=message, hint=hint)


class PortalRoute(APIRoute):
    """A portal route: errors become pages, every answer gets the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInNeeded as exc:
                response = see_other(f"{SIGN_IN_PATH}?next={quote(safe_next(exc.next_path), safe='/')}")
            except CsrfRefused:
                who = await run_in_threadpool(read_viewer, request)
                response = error_page(
                    request, who, 403, "Form refused",
                    "the form did not carry this session's security token", "reload the page and send it again",
                )
            except IdsyncError as exc:
                status, _slug, title = status_of(exc)
                who = await run_in_threadpool(read_viewer, request)
                response = error_page(request, who, status if status != 500 else 500, title, exc.message, exc.hint)
            for name, value in HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return route
