"""What a log line is about, and logs as one JSON object per line.

A node runs many runs and serves many requests at once; a line of its log
is useful to an operator only if it says which. The code executing a run or
a request states it once, with :func:`bound` (context variables, so each
thread and each asyncio task carries its own); every line logged inside the
block then carries those ids. With ``IDSYNC_LOG_FORMAT=json`` each line is a
JSON object (``time``, ``level``, ``logger``, ``message`` and the ids known:
``run_id``, ``collection``, ``job``, ``node``, ``request_id``), which log
collectors index without parsing text.

Nothing here reads what a line says: secrets are kept out of messages where
they are written (they are redacted or never formatted). The JSON encoding
only guarantees one line per record, whatever the message holds.

This module sits beside :mod:`idsync.settings`, below every layer, so the
services that execute runs and the API that serves requests can both bind
context without importing each other.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from idsync import settings

FIELDS = ("run_id", "collection", "job", "node", "request_id")
"""The context ids a line may carry, in the order they are written."""

_context: ContextVar[dict[str, Any]] = ContextVar("idsync_log_context", default={})  # noqa: B039 (never mutated)

FORMATS = ("text", "json")


def log_format() -> str:
    """The log format chosen by ``IDSYNC_LOG_FORMAT`` (text or json)."""
    from idsync.errors import ConfigError

    value = settings.get("log_format").strip().lower()
    if value not in FORMATS:
        raise ConfigError(f"IDSYNC_LOG_FORMAT={value!r} is not one of: {', '.join(FORMATS)}")
    return value


def json_logs() -> bool:
    return log_format() == "json"


def current() -> dict[str, Any]:
    """The context ids bound here (a copy)."""
    return dict(_context.get())


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """While the block runs, lines logged from this thread or task carry *ids*
    (those given as None are left as they were); the outer ones come back after."""
    unknown = set(ids) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log context: {', '.join(sorted(unknown))}")
    token = _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def json_line(message: str, level: str, logger: str, at: datetime | None = None, **extra: Any) -> str:
    """One JSON object on one line: the instant (UTC, ISO 8601), the level,
    the logger's name, the message, the context ids bound, then *extra*."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    item: dict[str, Any] = {
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level.lower(),
        "logger": logger,
        "message": message,
    }
    context = _context.get()
    item.update((name, context[name]) for name in FIELDS if name in context)
    item.update((k, v) for k, v in extra.items() if v is not None)
    return json.dumps(item, ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    """Log records as :func:`json_line` objects; a traceback goes in ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        error = self.formatException(record.exc_info) if record.exc_info else None
        return json_line(
            record.getMessage(), record.levelname, record.name,
            datetime.fromtimestamp(record.created, UTC), exception=error,
        )
