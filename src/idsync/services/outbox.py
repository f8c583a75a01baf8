"""The outbox as an operator sees it: list the messages, put failed ones back,
delete finished ones. Delivering them is the sender's
(:mod:`idsync.runtime.sender`). Message contents are never returned: they
may hold generated passwords.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from idsync.domain.roles import Role
from idsync.errors import ConfigError, quoted
from idsync.services import authz
from idsync.services.notifications import OutboxPolicy
from idsync.services.workspace import Workspace
from idsync.store.outbox_repo import (
    FAILED,
    PENDING,
    SENDING,
    SENT,
    STATES,
    OutboxMessage,
    OutboxRepository,
)

FINISHED = (SENT, FAILED)
"""The states purged by default."""
WAITING = (PENDING, SENDING)
"""The states of messages not delivered yet, nor given up."""
GIVEN_UP = (FAILED,)
"""The state of messages given up on (what a retry puts back)."""


def check_states(states: Iterable[str]) -> list[str]:
    """*states*, each one of the outbox's; ConfigError naming the first unknown one."""
    wanted = list(states)
    for state in wanted:
        if state not in STATES:
            raise ConfigError(f"unknown state {quoted(state)}: choose from {', '.join(STATES)}", field="state")
    return wanted


def list_messages(
    ws: Workspace, *, states: Iterable[str] = (), run_id: int | None = None, limit: int = 100,
    after_id: int | None = None,
) -> list[OutboxMessage]:
    """Messages, newest first, optionally of some states or of one run;
    *after_id*: the last message of the previous page (keyset pagination)."""
    authz.require_reader(ws, "the outbox")
    wanted = check_states(states)
    with ws.db.session() as session:
        rows = OutboxRepository(session).list(states=wanted, run_id=run_id, limit=limit, after_id=after_id)
    return [row.public() for row in rows]


def retry(ws: Workspace, ids: Sequence[int] = ()) -> int:
    """Put failed messages (those given, or every failed one) back: due now,
    with a new give-up time. How many were put back."""
    authz.require(ws, Role.OPERATOR, "retry outbox messages")
    with ws.db.session() as session:
        return OutboxRepository(session).retry(ids, give_up_after=OutboxPolicy.from_settings().give_up)


def purge(ws: Workspace, *, states: Iterable[str] = FINISHED, older_than: timedelta | None = None) -> int:
    """Delete messages in *states* (sent and failed by default), optionally only
    those created more than *older_than* ago. How many were deleted."""
    authz.require(ws, Role.OPERATOR, "purge the outbox")
    wanted = check_states(states) or list(FINISHED)
    with ws.db.session() as session:
        return OutboxRepository(session).purge(states=wanted, older_than=older_than)
