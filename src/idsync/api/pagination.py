"""Cursor pagination of lists: ``?limit=`` and an opaque ``?cursor=``.

A page answers ``{"items": [...], "next_cursor": "..." | null}``; the
cursor of the next page is given only when there is one. Clients treat it
as opaque. The lists kept in the database (runs, plans, requests, the audit
log, the outbox) page by keyset: the cursor holds the sort key and id of
the last item sent, and the service reads only the items after it, so a
page deep in 100,000 runs costs what the first does, and an item added
meanwhile neither repeats nor hides another. Short lists computed in full
(definitions, a directory search) page by position.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from fastapi import Query

from idsync.domain.plain import to_plain
from idsync.errors import ConfigError

MAX_ID = 2**63 - 1
"""The largest id a database row has (a signed 64-bit integer)."""
MAX_LIMIT = 500
DEFAULT_LIMIT = 50

Position = tuple[dt.datetime, int]


def _foreign() -> ConfigError:
    return ConfigError("the cursor is not one this API gave", field="cursor", hint="start again without it")


def _data(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise _foreign() from exc
    if not isinstance(data, dict):
        raise _foreign()
    return data


def _an_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


def _encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str | None) -> int:
    """The offset a position cursor stands for (0 without one); ConfigError for a cursor this API did not give."""
    data = _data(cursor)
    if data is None:
        return 0
    offset = data.get("o")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise _foreign()
    return offset


def encode(offset: int) -> str:
    return _encode({"o": offset})


def decode_position(cursor: str | None) -> Position | None:
    """The (sort time, id) a keyset cursor stands for; None without one."""
    data = _data(cursor)
    if data is None:
        return None
    at, last = data.get("t"), data.get("i")
    if not isinstance(at, str) or not _an_id(last):
        raise _foreign()
    try:
        moment = dt.datetime.fromisoformat(at)
    except ValueError as exc:
        raise _foreign() from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)), int(last)  # type: ignore[arg-type]


def encode_position(at: dt.datetime, last: int) -> str:
    return _encode({"t": at.isoformat(), "i": last})


def decode_id(cursor: str | None) -> int | None:
    """The id a keyset cursor over ids stands for; None without one."""
    data = _data(cursor)
    if data is None:
        return None
    last = data.get("i")
    if not _an_id(last) or "t" in data:
        raise _foreign()
    return int(last)  # type: ignore[arg-type]


class Page:
    """The page a request asks for: where it starts and how long it is."""

    def __init__(
        self,
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page."),
        cursor: str | None = Query(None, max_length=1000, description="The next_cursor of the previous page."),
    ) -> None:
        self.limit = limit
        self.cursor = cursor

    # ------------------------------------------------------------ by position (short lists)

    @property
    def offset(self) -> int:
        return decode(self.cursor)

    @property
    def fetch(self) -> int:
        """How many items to ask a service for: this page and one more, to know if another follows."""
        return self.offset + self.limit + 1

    def of(self, items: Iterable[Any], render: Callable[[Any], Any] = to_plain) -> dict[str, Any]:
        """This page of *items* (the whole list from its start, or an iterator),
        each rendered by *render*."""
        offset = self.offset
        window = list(islice(items, offset, offset + self.limit + 1))
        more = len(window) > self.limit
        return {
            "items": [render(item) for item in window[: self.limit]],
            "next_cursor": encode(offset + self.limit) if more else None,
        }

    # ------------------------------------------------------------ by keyset (lists in the database)

    @property
    def position(self) -> Position | None:
        """Where this page starts in a list ordered by (time, id), newest first:
        after the item at this position."""
        return decode_position(self.cursor)

    @property
    def position_id(self) -> int | None:
        """Where this page starts in a list ordered by id, newest first."""
        return decode_id(self.cursor)

    @property
    def ask(self) -> int:
        """How many items to ask a keyset service for: this page and one more."""
        return self.limit + 1

    def keyed(
        self, items: Iterable[Any], key: Callable[[Any], Position | int], render: Callable[[Any], Any] = to_plain,
    ) -> dict[str, Any]:
        """This page of *items*: the ones a service gave after :attr:`position`
        (up to :attr:`ask`); the next cursor holds the *key* of the last one sent."""
        window = list(islice(items, self.limit + 1))
        shown = window[: self.limit]
        next_cursor = None
        if len(window) > self.limit:
            last = key(shown[-1])
            next_cursor = _encode({"i": last}) if isinstance(last, int) else encode_position(*last)
        return {"items": [render(item) for item in shown], "next_cursor": next_cursor}
