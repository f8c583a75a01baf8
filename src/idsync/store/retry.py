"""Waiting out a database that is away for a moment.

A SQLite file locked by another process, a PostgreSQL server restarting or
a connection cut by an administrator all surface as
:class:`~idsync.errors.TransientError` (see :mod:`idsync.store.db_errors`).
A long-lived process (a scheduler, its runs, the outbox sender) must not
die of one: it logs one line, waits, and tries again, the wait doubling
from :data:`FIRST_WAIT` up to :data:`MAX_WAIT` seconds while the failures
last. An interactive command does not wait: it reports the error at once.

Only whole transactions are tried again (a function opening its own
session), so a failed attempt leaves nothing behind: the database rolled it
back. Any other error goes up at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from idsync.errors import TransientError

log = logging.getLogger(__name__)

FIRST_WAIT = 1.0
"""Seconds waited after the first transient failure."""

MAX_WAIT = 30.0
"""The longest wait between two attempts."""

T = TypeVar("T")


class Backoff:
    """Waits that double from *first* up to *cap*; :meth:`reset` after a success."""

    def __init__(self, first: float = FIRST_WAIT, cap: float = MAX_WAIT) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next(self) -> float:
        """The wait before the next attempt (longer each time, up to the cap)."""
        wait = self._next
        self._next = min(self._next * 2, self.cap)
        return wait

    def reset(self) -> None:
        self._next = self.first


def retry_transient(
    action: Callable[[], T],
    *,
    what: str,
    stop: threading.Event | None = None,
    backoff: Backoff | None = None,
) -> T:
    """The result of *action*, run again after a growing wait for as long as it
    raises TransientError; each failure is logged in one line naming *what*.

    When *stop* is set (the process shuts down), the last error is raised
    instead of waiting again.
    """
    waits = backoff or Backoff()
    while True:
        try:
            return action()
        except TransientError as exc:
            wait = waits.next()
            if stop is not None and stop.is_set():
                raise
            log.warning("%s: %s; trying again in %gs", what, exc.message, wait)
            if stop is not None:
                if stop.wait(wait):
                    raise
            else:
                time.sleep(wait)
