"""Waiting out a database away for a moment: growing waits, one line each, a stop."""

from __future__ import annotations

import logging
import threading

import pytest

from idsync.errors import ConfigError, TransientError
from idsync.store.retry import Backoff, retry_transient


def test_the_wait_doubles_from_one_second_up_to_thirty_and_starts_again_after_a_success() -> None:
    backoff = Backoff()
    assert [backoff.next() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next() == 1


def test_a_transient_failure_is_tried_again_and_said_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[int] = []

    def action() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientError("the database file x.db is locked by another process")
        return "done"

    with caplog.at_level(logging.WARNING):
        result = retry_transient(action, what="run 4: recording its counts", backoff=Backoff(0.001, 0.002))
    assert (result, len(attempts)) == ("done", 3)
    assert [r.getMessage() for r in caplog.records] == [
        "run 4: recording its counts: the database file x.db is locked by another process; trying again in 0.001s",
        "run 4: recording its counts: the database file x.db is locked by another process; trying again in 0.002s",
    ]
    assert all(r.exc_info is None for r in caplog.records)  # no traceback


def test_other_errors_are_not_tried_again() -> None:
    attempts: list[int] = []

    def action() -> None:
        attempts.append(1)
        raise ConfigError("bad")

    with pytest.raises(ConfigError):
        retry_transient(action, what="x")
    assert len(attempts) == 1


def test_a_process_shutting_down_stops_waiting() -> None:
    stop = threading.Event()
    attempts: list[int] = []

    def action() -> None:
        attempts.append(1)
        stop.set()  # the node shuts down while the database is away
        raise TransientError("away")

    with pytest.raises(TransientError):
        retry_transient(action, what="x", stop=stop, backoff=Backoff(0.001))
    assert len(attempts) == 1
