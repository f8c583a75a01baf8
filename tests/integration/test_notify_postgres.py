"""The outbox on a real PostgreSQL: a duplicate enqueue inside a larger
transaction, and claims raced by many senders at once (one winner each).

The session database and its fixtures are those of the store's PostgreSQL suite.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from idsync.store import Database
from idsync.store.outbox_repo import PENDING, NewMessage, OutboxRepository
from idsync.store.runs_repo import RunRepository
from tests.integration.test_store_postgres import db, migrated, pg_url, server

__all__ = ["db", "migrated", "pg_url", "server"]

pytestmark = pytest.mark.postgres

DAY = timedelta(days=1)


def message(run_id: int, recipient: str) -> NewMessage:
    return NewMessage(run_id, "nightly", "always", "email", recipient, "sealed", "dir")


def test_a_duplicate_enqueue_is_a_no_op_that_keeps_the_transaction(db: Database) -> None:
    with db.session() as session:
        run_id = RunRepository(session).create(job_name="nightly", job_id=None, kind="collection")
        repo = OutboxRepository(session)
        assert repo.enqueue(message(run_id, "a@example.org"), give_up_after=DAY)
        assert not repo.enqueue(message(run_id, "a@example.org"), give_up_after=DAY)
        assert repo.enqueue(message(run_id, "b@example.org"), give_up_after=DAY)
        RunRepository(session).log(run_id, "info", "still usable after the duplicate")
    with db.session() as session:
        assert [(m.recipient, m.state) for m in OutboxRepository(session).list()] == [
            ("b@example.org", PENDING), ("a@example.org", PENDING),
        ]


def test_racing_senders_each_claim_a_message_once(db: Database) -> None:
    with db.session() as session:
        run_id = RunRepository(session).create(job_name="nightly", job_id=None, kind="collection")
        repo = OutboxRepository(session)
        for i in range(40):
            repo.enqueue(message(run_id, f"u{i}@example.org"), give_up_after=DAY)
    start = threading.Barrier(4)
    claimed: dict[str, list[int]] = {}

    def sender(node: str) -> None:
        start.wait()
        mine = claimed.setdefault(node, [])
        with db.session() as session:
            due = OutboxRepository(session).due(100)
        for message_id in due:
            with db.session() as session:
                if OutboxRepository(session).claim(message_id, node, timedelta(minutes=5)) is not None:
                    mine.append(message_id)

    threads = [threading.Thread(target=sender, args=(f"n{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [message_id for ids in claimed.values() for message_id in ids]
    assert len(every) == 40 and len(set(every)) == 40
