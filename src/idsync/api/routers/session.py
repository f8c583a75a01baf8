"""``/session``: sign in with a name and password for a session cookie; sign out.

Repeated failed sign-ins of one name from one address are slowed down: after
:data:`MAX_FAILURES` within :data:`WINDOW_SECONDS`, that pair is refused
(429, with ``Retry-After``) until the window has passed.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from idsync.api.auth import SESSION_COOKIE, api_state, current_session, principal_of
from idsync.api.errors import ApiProblem
from idsync.api.models import SessionInfo
from idsync.domain.principals import Principal
from idsync.errors import AuthError
from idsync.services import authz, signin

router = APIRouter(tags=["session"])

MAX_FAILURES = 5
WINDOW_SECONDS = 300.0


class SignIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="The idsync user's name.")
    password: str = Field(min_length=1, max_length=4096, description="Its password (a directory user's: its directory password).")


class _Failures:
    """Failed sign-ins per (name, address), over a sliding window."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def wait(self, key: tuple[str, str]) -> float:
        """Seconds to wait before *key* may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            seen = self._seen[key]
            while seen and seen[0] <= now - WINDOW_SECONDS:
                seen.popleft()
            if len(seen) < MAX_FAILURES:
                return 0.0
            return seen[0] + WINDOW_SECONDS - now

    def add(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._seen[key].append(time.monotonic())

    def clear(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._seen.pop(key, None)


FAILURES = _Failures()


def _roles(request: Request, user: str) -> list[str]:
    ws = api_state(request).ws.acting_as(Principal(user, "user"))
    return sorted(role.value for role in authz.rights(ws).roles)


@router.post("/session", response_model=SessionInfo, summary="Sign in: a session cookie and its CSRF token")
def sign_in(body: SignIn, request: Request, response: Response) -> dict[str, object]:
    state = api_state(request)
    key = (body.name, request.client.host if request.client else "")
    wait = FAILURES.wait(key)
    if wait > 0:
        raise ApiProblem(
            429, "too many failed sign-ins for this user from this address; try again later",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    try:
        principal = signin.authenticate(state.ws, body.name, body.password)
    except AuthError as exc:
        FAILURES.add(key)
        raise ApiProblem(401, exc.message) from None
    FAILURES.clear(key)
    cookie, session = state.sessions.issue(principal.name)
    secure = state.config.secure_cookies
    response.set_cookie(
        SESSION_COOKIE, cookie, max_age=state.config.session_max_age, httponly=True, samesite="lax",
        secure=request.url.scheme == "https" if secure is None else secure, path="/",
    )
    return {"user": principal.name, "roles": _roles(request, principal.name), "csrf_token": session.csrf}


@router.get("/session", response_model=SessionInfo, summary="The current session: its user and CSRF token")
def show_session(request: Request) -> dict[str, object]:
    session = current_session(request)
    if session is None:
        raise ApiProblem(401, "not signed in", hint="POST a name and password to /api/v1/session")
    return {"user": session.user, "roles": _roles(request, session.user), "csrf_token": session.csrf}


@router.delete("/session", status_code=204, summary="Sign out: the session cookie is cleared")
def sign_out(request: Request) -> Response:
    principal_of(request)  # a cookie session needs its CSRF token to sign out
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response

