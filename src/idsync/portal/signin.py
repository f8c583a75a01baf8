"""Sign-in and sign-out pages.

Signing in (a local password, or a bind to the user's directory, both by
:func:`idsync.services.signin.authenticate`) sets the API's signed session
cookie, then goes to ``next`` when it is a path on this site (a link in an
approver's email, ``/requests/7``, opens that request), else the dashboard.
Failed sign-ins count against the same limit as the API's. The form is
CSRF-protected before any session exists: its token must match the cookie
set with the page (see :mod:`idsync.api.auth`), so another site cannot sign
a visitor in to an account of its choosing.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from idsync.api.auth import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    api_state,
    set_sign_in_cookie,
    sign_in_token,
    sign_in_token_matches,
)
from idsync.api.routers.session import FAILURES
from idsync.errors import AuthError
from idsync.portal.web import (
    CSRF_FIELD,
    SIGN_IN_PATH,
    PortalRoute,
    Posted,
    read_viewer,
    render,
    safe_next,
    see_other,
)
from idsync.services import signin

router = APIRouter(route_class=PortalRoute)

MAX_FIELD = 4096


def _form(request: Request, *, status: int = 200, next: str, name: str, message: str | None) -> Response:
    """The sign-in form, with its token and the cookie that holds it."""
    token = sign_in_token(request)
    page = render(request, "signin.html", None, status=status, next=next, name=name, message=message,
                  sign_in_token=token)
    set_sign_in_cookie(request, page, token)
    return page


@router.get(SIGN_IN_PATH)
def sign_in_page(request: Request, next: str = "/") -> Response:
    if read_viewer(request) is not None:
        return see_other(safe_next(next))
    return _form(request, next=safe_next(next), name="", message=None)


@router.post(SIGN_IN_PATH)
async def sign_in(request: Request) -> Response:
    fields = dict(parse_qsl((await request.body())[:3 * MAX_FIELD].decode("utf-8", "replace"), keep_blank_values=True))
    name = fields.get("name", "").strip()[:200]
    password = fields.get("password", "")[:MAX_FIELD]
    target = safe_next(fields.get("next"))
    state = api_state(request)
    if not sign_in_token_matches(request, fields.get(CSRF_FIELD, "")):
        return _form(request, status=403, next=target, name=name,
                     message="the sign-in form's security token is missing or expired; sign in again with this form")
    key = (name, request.client.host if request.client else "")
    if FAILURES.wait(key) > 0:
        message = "too many failed sign-ins for this user from this address; try again later"
        return _form(request, status=429, next=target, name=name, message=message)
    if not name or not password:
        return _form(request, status=422, next=target, name=name, message="enter your user name and your password")
    try:
        principal = await run_in_threadpool(signin.authenticate, state.ws, name, password)
    except AuthError as exc:
        FAILURES.add(key)
        return _form(request, status=401, next=target, name=name, message=exc.message)
    FAILURES.clear(key)
    cookie, _session = state.sessions.issue(principal.name)
    secure = state.config.secure_cookies
    response = see_other(target)
    response.set_cookie(
        SESSION_COOKIE, cookie, max_age=state.config.session_max_age, httponly=True, samesite="lax",
        secure=request.url.scheme == "https" if secure is None else secure, path="/",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.post("/signout")
def sign_out(_form: Posted) -> Response:
    response = see_other(SIGN_IN_PATH)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response
