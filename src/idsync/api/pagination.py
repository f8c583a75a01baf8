"""Cursor pagination of lists: ``?limit=`` and an opaque ``?cursor=``.

A page answers ``{"items": [...], "next_cursor": "..." | null}``; the
cursor of the next page is given only when there is one. Clients treat it
as opaque: today it encodes a position in the list, newest first.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from fastapi import Query

from idsync.domain.plain import to_plain
from idsync.errors import ConfigError

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


def decode(cursor: str | None) -> int:
    """The offset a cursor stands for (0 without one); ConfigError for a cursor this API did not give."""
    if not cursor:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ConfigError("the cursor is not one this API gave", field="cursor", hint="start again without it") from exc
    if offset < 0:
        raise ConfigError("the cursor is not one this API gave", field="cursor", hint="start again without it")
    return offset


def encode(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


class Page:
    """The page a request asks for: where it starts and how long it is."""

    def __init__(
        self,
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page."),
        cursor: str | None = Query(None, description="The next_cursor of the previous page."),
    ) -> None:
        self.limit = limit
        self.offset = decode(cursor)

    @property
    def fetch(self) -> int:
        """How many items to ask a service for: this page and one more, to know if another follows."""
        return self.offset + self.limit + 1

    def of(self, items: Iterable[Any], render: Callable[[Any], Any] = to_plain) -> dict[str, Any]:
        """This page of *items* (the whole list from its start, or an iterator),
        each rendered by *render*."""
        window = list(islice(items, self.offset, self.offset + self.limit + 1))
        more = len(window) > self.limit
        return {
            "items": [render(item) for item in window[: self.limit]],
            "next_cursor": encode(self.offset + self.limit) if more else None,
        }
