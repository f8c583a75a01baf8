"""The outbox, as an operator handles it: sending failed messages again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from idsync.errors import NotFoundError, StateConflictError
from idsync.store import Database, RunRepository
from idsync.store.outbox_repo import FAILED, PENDING, SENT, NewMessage, OutboxRepository
from idsync.store.tables import outbox

DAY = timedelta(days=1)


def messages(db: Database, states: list[str]) -> list[int]:
    """One message per state in *states*, of one run; their ids."""
    with db.session() as session:
        run_id = RunRepository(session).create(job_name="nightly", job_id=None, kind="collection")
        repo = OutboxRepository(session)
        for n, _state in enumerate(states):
            repo.enqueue(NewMessage(run_id, "nightly", "always", "email", f"r{n}@example.org", "sealed"), give_up_after=DAY)
        ids = [m.id for m in reversed(repo.list(run_id=run_id))]
        for message_id, state in zip(ids, states, strict=True):
            session.execute(update(outbox).where(outbox.c.id == message_id).values(state=state))
    return ids


def states(db: Database) -> dict[int, str]:
    with db.session() as session:
        return {m.id: m.state for m in OutboxRepository(session).list()}


def test_retry_puts_the_failed_messages_back(db: Database) -> None:
    failed, sent, other = messages(db, [FAILED, SENT, FAILED])
    with db.session() as session:
        assert OutboxRepository(session).retry([failed], give_up_after=DAY) == 1
    assert states(db) == {failed: PENDING, sent: SENT, other: FAILED}
    with db.session() as session:
        assert OutboxRepository(session).retry(give_up_after=DAY) == 1
    assert states(db)[other] == PENDING


def test_retrying_a_message_that_is_not_failed_is_a_state_conflict_and_changes_nothing(db: Database) -> None:
    failed, sent, pending = messages(db, [FAILED, SENT, PENDING])
    with pytest.raises(StateConflictError) as caught, db.session() as session:
        OutboxRepository(session).retry([failed, sent, pending], give_up_after=DAY)
    assert caught.value.message == (
        f"outbox message(s) {sent} (sent), {pending} (pending) not failed: only a failed message can be sent again"
    )
    assert states(db) == {failed: FAILED, sent: SENT, pending: PENDING}


def test_retrying_a_message_that_does_not_exist_is_not_found(db: Database) -> None:
    (failed,) = messages(db, [FAILED])
    with pytest.raises(NotFoundError, match=f"^no outbox message {failed + 1}$") as caught, db.session() as session:
        OutboxRepository(session).retry([failed, failed + 1], give_up_after=DAY)
    assert caught.value.hint
    assert states(db) == {failed: FAILED}
