"""Every HTTP request gets an id, carried by the lines logged while it is
served and sent back in ``X-Request-ID``.

A proxy's id (``X-Request-ID`` of the request, when it is a short token) is
kept, so the proxy's log and idsync's name the same request; otherwise one
is made up.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import FastAPI

from idsync import logcontext

HEADER = b"x-request-id"
_ACCEPTED = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
"""The ids taken from a request: short and plain, so a log line cannot be forged through one."""


class RequestIds:
    """ASGI middleware binding ``request_id`` for the request's lifetime."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER, b"")
        request_id = given.decode() if _ACCEPTED.fullmatch(given) else uuid.uuid4().hex

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (HEADER, request_id.encode())]}
            await send(message)

        with logcontext.bound(request_id=request_id):
            await self.app(scope, receive, send_with_id)


def install(app: FastAPI) -> None:
    app.add_middleware(RequestIds)
