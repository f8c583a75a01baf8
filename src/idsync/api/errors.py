"""One error shape for every answer that is not a success: RFC 9457 problem details.

The status comes from the error's class alone, never from its message
(docs/architecture.md, Errors): a ``ConfigError`` is 422, ``NotFoundError``
404, ``VersionConflictError`` 412 (an edit based on a stale version),
``StateConflictError`` 409, ``PermissionDeniedError`` 403,
``TransientError`` 503 with ``Retry-After``, any other ``ConnectorError``
(``AuthError`` included: a store refused idsync's own credentials) 502.
The document carries the error's one-line message as ``detail`` and its
``field`` and ``hint`` when it has them. An unexpected exception is logged
with its traceback and answered 500 with a generic detail: a traceback never
reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from idsync.errors import (
    ConfigError,
    ConnectorError,
    IdsyncError,
    NotFoundError,
    PermissionDeniedError,
    RunAborted,
    StateConflictError,
    TransientError,
    VersionConflictError,
    clipped,
)

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:idsync:problem:"
RETRY_AFTER_SECONDS = 30

# class -> (status, type slug, title); the first class an error is an instance of wins.
STATUSES: tuple[tuple[type[IdsyncError], int, str, str], ...] = (
    (PermissionDeniedError, 403, "permission-denied", "Permission denied"),
    (NotFoundError, 404, "not-found", "Not found"),
    (VersionConflictError, 412, "precondition-failed", "The definition changed since it was read"),
    (StateConflictError, 409, "state-conflict", "Not in a state that allows this"),
    (ConfigError, 422, "invalid", "Not valid"),
    (TransientError, 503, "unavailable", "Temporarily unavailable"),
    (ConnectorError, 502, "connector", "A store, source or the database could not do this"),
    (RunAborted, 409, "run-stopped", "The run was stopped"),
)

HTTP_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("permission-denied", "Permission denied"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("state-conflict", "Not in a state that allows this"),
    412: ("precondition-failed", "The definition changed since it was read"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid", "Not valid"),
    428: ("precondition-required", "If-Match is required"),
    429: ("too-many-requests", "Too many requests"),
}


class ApiProblem(Exception):
    """An answer the API itself gives (401, 412, 428...), not raised by a service."""

    def __init__(
        self, status: int, detail: str, *, hint: str | None = None, field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.hint = hint
        self.field = field
        self.headers = headers or {}


def problem(
    status: int, detail: str, *, slug: str | None = None, title: str | None = None, hint: str | None = None,
    field: str | None = None, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem document with *status*."""
    default_slug, default_title = HTTP_TITLES.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + (slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
    }
    if hint:
        body["hint"] = hint
    if field:
        body["field"] = field
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def status_of(exc: IdsyncError) -> tuple[int, str, str]:
    """The HTTP status, type slug and title for an idsync error, by its class."""
    for cls, status, slug, title in STATUSES:
        if isinstance(exc, cls):
            return status, slug, title
    return 500, "internal", "Internal error"


def from_idsync_error(exc: IdsyncError) -> JSONResponse:
    status, slug, title = status_of(exc)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return problem(status, exc.message, slug=slug, title=title, hint=exc.hint, field=exc.field, headers=headers)


async def _on_idsync_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IdsyncError)
    return from_idsync_error(exc)


async def _on_api_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem(exc.status, exc.detail, hint=exc.hint, field=exc.field, headers=exc.headers)


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    message = clipped(str(first.get("msg", "not valid")))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return problem(
        422, f"{where}: {message}{more}" if where else message + more, field=where or None,
        extra={"errors": [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": clipped(str(e.get("msg", "")))}
            for e in errors[:20]
        ]},
    )


async def _on_http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTP_TITLES.get(exc.status_code, ("", "Error"))[1]
    return problem(exc.status_code, detail, headers=dict(exc.headers or {}))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem(500, "the server met an unexpected error; it is logged", slug="internal", title="Internal error")


def install(app: FastAPI) -> None:
    """Make every error of *app* a problem document."""
    app.add_exception_handler(IdsyncError, _on_idsync_error)
    app.add_exception_handler(ApiProblem, _on_api_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
