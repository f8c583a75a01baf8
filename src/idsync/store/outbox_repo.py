"""The notification outbox: messages waiting for delivery, and their fate.

A message is written once (the unique key run, trigger, channel, recipient
makes a second write a no-op) in the transaction that finishes its run, so
a run and its notifications are committed together or not at all. A
sender takes a message with a conditional UPDATE (:meth:`OutboxRepository.claim`)
that only one sender can win, holds it for a lease while it delivers, and
records the outcome only while it still holds it. A sender that died while
holding a message loses it when the lease ends, and another takes it over.
Each claim adds one to the message's ``attempts``, and the outcome names
the attempt it is for: a sender whose claim was taken over (whatever the
node names) finds the attempt moved on, and records nothing.

Message contents are stored as a :class:`~idsync.store.secrets.SecretBox`
token: generated passwords travel through here and nothing is kept in clear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idsync.errors import NotFoundError, StateConflictError
from idsync.store.tables import outbox, utcnow

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
STATES = (PENDING, SENDING, SENT, FAILED)


@dataclass(frozen=True)
class OutboxMessage:
    """One message of the outbox, without its contents: what may be shown."""

    id: int
    run_id: int
    collection_name: str
    trigger: str
    channel: str
    recipient: str
    store_name: str | None
    state: str
    attempts: int
    next_attempt_at: datetime
    expires_at: datetime
    claimed_by: str | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class OutboxRow(OutboxMessage):
    """One message of the outbox, with its contents (still sealed: they may hold passwords)."""

    payload: str = field(repr=False)

    def public(self) -> OutboxMessage:
        """This message without its contents."""
        return OutboxMessage(**{f.name: getattr(self, f.name) for f in fields(OutboxMessage)})


@dataclass(frozen=True)
class NewMessage:
    """A message to enqueue; *payload* is already sealed."""

    run_id: int
    collection_name: str
    trigger: str
    channel: str
    recipient: str
    payload: str = field(repr=False)
    store_name: str | None = None


class OutboxRepository:
    """Reads and writes the outbox; the caller's session decides when it is committed."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock

    def enqueue(self, message: NewMessage, *, give_up_after: timedelta) -> bool:
        """Add *message*; False when the same message (run, trigger, channel,
        recipient) is in the outbox already. A savepoint keeps a duplicate
        from spoiling the caller's transaction."""
        now = self._clock()
        values = {
            "run_id": message.run_id,
            "collection_name": message.collection_name,
            "trigger": message.trigger,
            "channel": message.channel,
            "recipient": message.recipient,
            "store_name": message.store_name,
            "payload": message.payload,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "expires_at": now + give_up_after,
            "created_at": now,
        }
        if self._exists(message):
            return False
        try:
            with self._session.begin_nested():
                self._session.execute(outbox.insert().values(**values))
        except IntegrityError:
            return False
        return True

    def _exists(self, message: NewMessage) -> bool:
        query = select(outbox.c.id).where(
            outbox.c.run_id == message.run_id,
            outbox.c.trigger == message.trigger,
            outbox.c.channel == message.channel,
            outbox.c.recipient == message.recipient,
        )
        return self._session.execute(query).first() is not None

    # ------------------------------------------------------------ the sender's side

    def due(self, limit: int = 50, *, run_ids: Iterable[int] = ()) -> list[int]:
        """Ids of the messages a sender may take now: pending and due, or held
        by a sender whose lease ran out (only those of *run_ids* when given)."""
        now = self._clock()
        query = (
            select(outbox.c.id)
            .where(_takeable(now))
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
        )
        chosen = list(run_ids)
        if chosen:
            query = query.where(outbox.c.run_id.in_(chosen))
        return [row.id for row in self._session.execute(query)]

    def of_runs(self, run_ids: Iterable[int]) -> list[OutboxMessage]:
        """The messages of the given runs, oldest first, without their contents."""
        query = select(outbox).where(outbox.c.run_id.in_(list(run_ids))).order_by(outbox.c.id)
        return [_row(row).public() for row in self._session.execute(query)]

    def claim(self, message_id: int, node: str, lease: timedelta) -> OutboxRow | None:
        """Take message *message_id* for *node*, or None when another sender
        took it first (or it is not due). Commit before delivering, so the
        other senders see the claim. The row returned carries the claim's
        attempt number, which the outcome must name."""
        now = self._clock()
        result = self._session.execute(
            update(outbox)
            .where(outbox.c.id == message_id, _takeable(now))
            .values(
                state=SENDING,
                claimed_by=node,
                claimed_until=now + lease,
                attempts=outbox.c.attempts + 1,
            )
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        return self.get(message_id)

    def mark_sent(self, message_id: int, node: str, *, attempt: int) -> bool:
        """Record the delivery by *node* in claim *attempt*; False (nothing
        written) when the claim is no longer held: another sender took over."""
        return self._finish(message_id, node, attempt, state=SENT, sent_at=self._clock(), last_error=None)

    def mark_retry(
        self, message_id: int, node: str, error: str, next_attempt_at: datetime, *, attempt: int
    ) -> bool:
        """Put the message back to wait until *next_attempt_at* (False when the claim is lost)."""
        return self._finish(
            message_id, node, attempt, state=PENDING, next_attempt_at=next_attempt_at, last_error=error
        )

    def mark_failed(self, message_id: int, node: str, error: str, *, attempt: int) -> bool:
        """Give up on the message: it stays, failed, until retried or purged (False when the claim is lost)."""
        return self._finish(message_id, node, attempt, state=FAILED, last_error=error)

    def _finish(self, message_id: int, node: str, attempt: int, **values: object) -> bool:
        """The outcome of a claim, written only while that claim holds: state
        *sending*, the same node and the same attempt."""
        held = and_(
            outbox.c.id == message_id,
            outbox.c.state == SENDING,
            outbox.c.claimed_by == node,
            outbox.c.attempts == attempt,
        )
        result = self._session.execute(
            update(outbox).where(held).values(claimed_by=None, claimed_until=None, **values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------ operators

    def get(self, message_id: int) -> OutboxRow | None:
        row = self._session.execute(select(outbox).where(outbox.c.id == message_id)).first()
        return _row(row) if row is not None else None

    def list(
        self, *, states: Iterable[str] = (), run_id: int | None = None, limit: int = 100, after_id: int | None = None,
    ) -> list[OutboxRow]:
        """Messages, newest first, optionally of some states or one run; with
        *after_id*, those after that message, older (keyset pagination)."""
        query = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if after_id is not None:
            query = query.where(outbox.c.id < after_id)
        wanted = list(states)
        if wanted:
            query = query.where(outbox.c.state.in_(wanted))
        if run_id is not None:
            query = query.where(outbox.c.run_id == run_id)
        return [_row(row) for row in self._session.execute(query)]

    def counts(self) -> dict[str, int]:
        """How many messages are in each state."""
        query = select(outbox.c.state, func.count()).group_by(outbox.c.state)
        found = {state: int(number) for state, number in self._session.execute(query)}
        return {state: found.get(state, 0) for state in STATES}

    def retry(self, ids: Iterable[int] = (), *, give_up_after: timedelta) -> int:
        """Send failed messages again (the given ones, or all failed): due now,
        with a new give-up time. Returns how many were put back.

        Given ids are checked first, and none is put back when one is wrong:
        one that does not exist raises NotFoundError, one that is not failed
        (waiting, being sent, or sent: sending it again would send it twice)
        StateConflictError."""
        now = self._clock()
        query = update(outbox).where(outbox.c.state == FAILED)
        chosen = sorted(set(ids))
        if chosen:
            self._check_retriable(chosen)
            query = query.where(outbox.c.id.in_(chosen))
        result = self._session.execute(
            query.values(state=PENDING, next_attempt_at=now, expires_at=now + give_up_after)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def _check_retriable(self, chosen: Sequence[int]) -> None:
        query = select(outbox.c.id, outbox.c.state).where(outbox.c.id.in_(chosen))
        found: dict[int, str] = {row.id: row.state for row in self._session.execute(query)}
        missing = [str(i) for i in chosen if i not in found]
        if missing:
            raise NotFoundError(f"no outbox message {', '.join(missing)}", hint="list the outbox messages")
        busy = [i for i in chosen if found[i] != FAILED]
        if busy:
            shown = ", ".join(f"{i} ({found[i]})" for i in busy)
            raise StateConflictError(
                f"outbox message(s) {shown} not failed: only a failed message can be sent again"
            )

    def purge(self, *, states: Iterable[str] = (SENT, FAILED), older_than: timedelta | None = None) -> int:
        """Delete finished messages (sent and failed by default), optionally only
        those created more than *older_than* ago. Messages still waiting are kept
        unless their state is named."""
        query = delete(outbox).where(outbox.c.state.in_(list(states)))
        if older_than is not None:
            query = query.where(outbox.c.created_at < self._clock() - older_than)
        result = self._session.execute(query)
        return int(result.rowcount)  # type: ignore[attr-defined]


def _takeable(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(outbox.c.state == PENDING, outbox.c.next_attempt_at <= now),
        and_(outbox.c.state == SENDING, outbox.c.claimed_until < now),
    )


def _row(row: Row[tuple[object, ...]]) -> OutboxRow:
    m = row._mapping
    return OutboxRow(
        id=m["id"],
        run_id=m["run_id"],
        collection_name=m["collection_name"],
        trigger=m["trigger"],
        channel=m["channel"],
        recipient=m["recipient"],
        store_name=m["store_name"],
        state=m["state"],
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        expires_at=m["expires_at"],
        claimed_by=m["claimed_by"],
        last_error=m["last_error"],
        created_at=m["created_at"],
        sent_at=m["sent_at"],
        payload=m["payload"],
    )
