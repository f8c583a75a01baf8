"""Who acts on a request: a bearer token, or a session cookie with its CSRF token.

- ``Authorization: Bearer idsync_...``: an API token (services.tokens); no
  cookie, so no CSRF token is needed.
- The session cookie that ``POST /api/v1/session`` sets after a name and
  password (services.signin): signed (itsdangerous, with a key derived from
  the installation's secret key), HttpOnly, SameSite=Lax, Secure over https,
  valid for a limited time. A request that changes something with it must
  send the session's CSRF token, given at sign-in, in ``X-CSRF-Token``.

Signing in is protected too (a forged sign-in would put a victim in the
attacker's session): the sign-in form carries a token that must match the
``idsync_signin`` cookie set with the form, before any session exists
(SameSite=Strict, so another site's form never sends it). The API's
``POST /session`` takes JSON only, which a form on another site cannot send.

Neither says what the principal may do: every service checks the roles
itself (PermissionDeniedError, 403). A refused credential is 401, with one
message whatever the cause.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from idsync.api.errors import ApiProblem
from idsync.domain.principals import Principal
from idsync.errors import AuthError
from idsync.services import tokens
from idsync.services.workspace import Workspace

SESSION_COOKIE = "idsync_session"
SIGN_IN_COOKIE = "idsync_signin"
SIGN_IN_MAX_AGE = 3600
"""Seconds a sign-in form's token is good for."""
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="idsync"'}


@dataclass(frozen=True)
class Session:
    """A signed-in user's session: who, and the CSRF token of its forms and scripts."""

    user: str
    csrf: str


class Sessions:
    """Issues and reads signed session cookies."""

    SALT = "idsync-api-session"

    def __init__(self, secret: str, max_age: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=self.SALT)
        self.max_age = max_age

    def issue(self, user: str) -> tuple[str, Session]:
        session = Session(user, secrets.token_urlsafe(32))
        return self._serializer.dumps({"u": session.user, "c": session.csrf}), session

    def read(self, cookie: str) -> Session | None:
        try:
            data: Any = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # a bad signature, or an expired one
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("c"), str):
            return None
        return Session(data["u"], data["c"])


def sign_in_token(request: Request) -> str:
    """The token of the sign-in form of *request*: the one its cookie holds, or a new one."""
    held = request.cookies.get(SIGN_IN_COOKIE, "")
    return held if 32 <= len(held) <= 64 and held.replace("-", "").replace("_", "").isalnum() else (
        secrets.token_urlsafe(32)
    )


def set_sign_in_cookie(request: Request, response: Any, token: str) -> None:
    """Give *response* the cookie holding the sign-in form's *token*."""
    secure = api_state(request).config.secure_cookies
    response.set_cookie(
        SIGN_IN_COOKIE, token, max_age=SIGN_IN_MAX_AGE, httponly=True, samesite="strict",
        secure=request.url.scheme == "https" if secure is None else secure, path="/",
    )


def sign_in_token_matches(request: Request, sent: str) -> bool:
    """Whether a posted sign-in form's token is the one its cookie holds."""
    held = request.cookies.get(SIGN_IN_COOKIE, "")
    return bool(held and sent) and hmac.compare_digest(held.encode(), sent.encode())


def api_state(request: Request) -> Any:
    """The :class:`~idsync.api.app.ApiState` of the app serving *request*."""
    return request.app.state.idsync


def current_session(request: Request) -> Session | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    return api_state(request).sessions.read(cookie) if cookie else None


def principal_of(request: Request) -> Principal:
    """Who sends *request*; 401 without a valid credential, 403 for a cookie
    without its CSRF token on a request that changes something."""
    state = api_state(request)
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiProblem(401, "the Authorization header must read: Bearer <API token>", headers=BEARER_CHALLENGE)
        try:
            return tokens.authenticate_token(state.ws, value.strip())
        except AuthError as exc:
            raise ApiProblem(401, exc.message, headers=BEARER_CHALLENGE) from None
    session = current_session(request)
    if session is None:
        raise ApiProblem(
            401, "not signed in: send an API token as a bearer token, or sign in for a session cookie",
            hint="POST a name and password to /api/v1/session", headers=BEARER_CHALLENGE,
        )
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise ApiProblem(
                403, f"a request that changes something needs the session's CSRF token in {CSRF_HEADER}",
                hint="send the csrf_token given at sign-in", field=CSRF_HEADER,
            )
    return Principal(session.user, "user")


def acting(request: Request) -> Workspace:
    """The shared workspace acting for whoever sends *request*."""
    ws: Workspace = api_state(request).ws
    return ws.acting_as(principal_of(request))


Acting = Annotated[Workspace, Depends(acting)]
"""A handler's parameter: the workspace acting for the authenticated principal."""
