"""Workflow requests as stored: the request, the plans it binds, its decision trail.

The trail (``request_decisions``) is one hash chain over the whole table:
each row holds the hash of the row before it (``"0" * 64`` for the first)
and its own hash, SHA-256 over that previous hash and a canonical JSON of
what the row says (request, time in ISO-8601 UTC, actor, action, comment,
detail). Editing, inserting or deleting a row breaks the chain where it
happened. Appends are serialised (on PostgreSQL by a transaction-level
advisory lock taken before the last hash is read; on SQLite by taking the
database's write lock first), and each append updates the request's
``state``, a cache of what its trail folds into, in the same transaction.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idsync.domain.dn import normalize_dn
from idsync.domain.results import RunState
from idsync.domain.roles import Role
from idsync.errors import ConfigError, NotFoundError, StateConflictError
from idsync.store import chain
from idsync.store.keyset import Position, older_than
from idsync.store.tables import (
    request_decisions,
    request_plans,
    requests,
    runs,
    user_roles,
    users,
    utcnow,
)

TRAIL_LOCK = 7_140_512_001
"""The PostgreSQL advisory lock that serialises appends to the trail."""

IN_BATCH = 500
"""Ids per IN (...) list of one query (well under the bound parameters SQLite takes)."""

STORE_SEPARATOR = ", "
"""How the names of several stores with workflows are kept in ``store_name``."""


@dataclass(frozen=True)
class RequestRow:
    """A request as stored; ``stores``: the stores whose workflows it follows."""

    id: int
    run_id: int
    collection_name: str
    stores: tuple[str, ...]
    kind: str
    reason: str
    requested_by: str
    state: str
    required_approvals: int
    created_at: datetime
    expires_at: datetime
    escalate_at: datetime | None
    escalation_step: int
    plans_at: datetime | None
    closed_at: datetime | None
    outcome: str | None


@dataclass(frozen=True)
class NewPlan:
    """A plan a request binds: the job, its plan (None: it could not be
    computed), what the source looked like, when it was computed."""

    job_name: str
    plan_id: int | None
    source_fingerprint: str | None
    computed_at: datetime


@dataclass(frozen=True)
class RequestPlanRow(NewPlan):
    request_id: int
    seq: int


@dataclass(frozen=True)
class NewDecision:
    """One decision to append: who, what, when, the comment and what was
    decided (``detail``: kinds, excluded DNs, whom re-routed to)."""

    actor: str
    action: str
    at: datetime
    comment: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrailRow(NewDecision):
    """One stored decision with its place in the chain."""

    id: int = 0
    request_id: int = 0
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True)
class UserFacts:
    """A user as eligibility needs it: name, DN, disabled, approver role granted."""

    name: str
    dn: str | None
    disabled: bool
    approver: bool


class RequestRepository:
    """Reads and writes requests; the caller's session decides when it is committed."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock

    # ------------------------------------------------------------ requests

    def create(
        self,
        *,
        run_id: int,
        collection_name: str,
        stores: Sequence[str],
        kind: str,
        reason: str,
        requested_by: str,
        required_approvals: int,
        expires_at: datetime,
        escalate_at: datetime | None,
        plans: Sequence[NewPlan],
    ) -> int:
        """A new pending request with its plans; its id. StateConflictError
        when the collection has a pending request already (the database
        refuses a second one); the transaction is then still usable."""
        now = self._clock()
        try:
            with self._session.begin_nested():
                result = self._session.execute(
                    insert(requests).values(
                        run_id=run_id,
                        collection_name=collection_name,
                        store_name=STORE_SEPARATOR.join(stores),
                        kind=kind,
                        reason=reason,
                        requested_by=requested_by,
                        state="pending",
                        required_approvals=required_approvals,
                        created_at=now,
                        expires_at=expires_at,
                        escalate_at=escalate_at,
                        escalation_step=0,
                        plans_at=max((p.computed_at for p in plans), default=now),
                    )
                )
        except IntegrityError as exc:
            pending = self.pending_for(collection_name)
            raise StateConflictError(
                f"collection {collection_name!r} has a request awaiting approval already"
                + (f" (request {pending.id})" if pending is not None else ""),
                field="collection",
            ) from exc
        request_id = int(result.inserted_primary_key[0])  # type: ignore[attr-defined]
        self._insert_plans(request_id, plans)
        return request_id

    def replace_plans(self, request_id: int, plans: Sequence[NewPlan]) -> None:
        """The request binds *plans* from now on (a re-preview)."""
        self._session.execute(delete(request_plans).where(request_plans.c.request_id == request_id))
        self._insert_plans(request_id, plans)
        self._session.execute(
            update(requests)
            .where(requests.c.id == request_id)
            .values(plans_at=max((p.computed_at for p in plans), default=self._clock()))
        )

    def _insert_plans(self, request_id: int, plans: Sequence[NewPlan]) -> None:
        if plans:
            self._session.execute(
                insert(request_plans),
                [
                    {
                        "request_id": request_id,
                        "seq": seq,
                        "job_name": plan.job_name,
                        "plan_id": plan.plan_id,
                        "source_fingerprint": plan.source_fingerprint,
                        "computed_at": plan.computed_at,
                    }
                    for seq, plan in enumerate(plans)
                ],
            )

    def get(self, request_id: int) -> RequestRow | None:
        row = self._session.execute(select(requests).where(requests.c.id == request_id)).first()
        return _request(row) if row is not None else None

    def require(self, request_id: int) -> RequestRow:
        found = self.get(request_id)
        if found is None:
            raise NotFoundError(f"no request {request_id}", hint="list the requests to see which exist")
        return found

    def pending_for(self, collection_name: str) -> RequestRow | None:
        """The pending request of a collection, if any (there is at most one)."""
        row = self._session.execute(
            select(requests).where(requests.c.collection_name == collection_name, requests.c.state == "pending")
        ).first()
        return _request(row) if row is not None else None

    def for_run(self, run_id: int) -> RequestRow | None:
        """The newest request that waits on (or waited on) run *run_id*."""
        row = self._session.execute(
            select(requests).where(requests.c.run_id == run_id).order_by(requests.c.id.desc()).limit(1)
        ).first()
        return _request(row) if row is not None else None

    def list(
        self,
        *,
        states: Collection[str] | None = None,
        requester: str | None = None,
        collection: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        ids: Collection[int] | None = None,
        limit: int | None = 100,
        after: Position | None = None,
    ) -> builtins.list[RequestRow]:
        """Requests matching every filter given, newest first; with *after*,
        those after that position (keyset pagination)."""
        query = select(requests)
        if after is not None:
            query = query.where(older_than(requests.c.created_at, requests.c.id, after))
        if states is not None:
            query = query.where(requests.c.state.in_(list(states)))
        if requester is not None:
            query = query.where(requests.c.requested_by == requester)
        if collection is not None:
            query = query.where(requests.c.collection_name == collection)
        if since is not None:
            query = query.where(requests.c.created_at >= since)
        if until is not None:
            query = query.where(requests.c.created_at < until)
        if ids is not None:
            query = query.where(requests.c.id.in_(list(ids)))
        query = query.order_by(requests.c.created_at.desc(), requests.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return [_request(row) for row in self._session.execute(query)]

    def set_values(self, request_id: int, **values: Any) -> None:
        """Change the request's bookkeeping (escalate_at, escalation_step, outcome)."""
        self._session.execute(update(requests).where(requests.c.id == request_id).values(**values))

    def plans(self, request_id: int) -> builtins.list[RequestPlanRow]:
        query = select(request_plans).where(request_plans.c.request_id == request_id).order_by(request_plans.c.seq)
        return [
            RequestPlanRow(
                job_name=row.job_name,
                plan_id=row.plan_id,
                source_fingerprint=row.source_fingerprint,
                computed_at=row.computed_at,
                request_id=row.request_id,
                seq=row.seq,
            )
            for row in self._session.execute(query)
        ]

    # ------------------------------------------------------------ the run a request waits on

    def park_run(self, run_id: int, fence: int) -> bool:
        """Running run *run_id* (held by *fence*) now awaits approval, its lease
        given up; False (nothing changed) when this node no longer holds it."""
        result = self._session.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.fence == fence, runs.c.state == RunState.RUNNING.value)
            .values(state=RunState.AWAITING_APPROVAL.value, node=None, lease_until=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def end_awaiting(self, run_id: int, state: RunState, reason: str) -> bool:
        """End run *run_id*, awaiting approval, without running it (denied,
        expired, cancelled); False when it was no longer awaiting approval."""
        result = self._session.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.state == RunState.AWAITING_APPROVAL.value)
            .values(state=state.value, error=reason, finished_at=self._clock())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def open_for_many(self, collection_names: Collection[str]) -> dict[str, RequestRow]:
        """:meth:`open_for` for several collections in one query, by collection
        name (those without an open request are left out)."""
        if not collection_names:
            return {}
        found: dict[str, RequestRow] = {}
        rows = self._session.execute(
            select(requests)
            .where(requests.c.collection_name.in_(sorted(set(collection_names))),
                   requests.c.state.in_(("pending", "approved")))
            .order_by(requests.c.id)
        )
        for row in rows:
            found.setdefault(row.collection_name, _request(row))
        return found

    def open_for(self, collection_name: str) -> RequestRow | None:
        """The request of a collection that is pending or approved but not yet
        executed: a new run of the collection waits until it is closed."""
        row = self._session.execute(
            select(requests)
            .where(requests.c.collection_name == collection_name, requests.c.state.in_(("pending", "approved")))
            .order_by(requests.c.id)
            .limit(1)
        ).first()
        return _request(row) if row is not None else None

    # ------------------------------------------------------------ the trail

    def lock_trail(self) -> None:
        """Serialise with every other writer of the trail until this
        transaction ends; call it before reading what a decision is checked
        against, so two decisions never both pass on the same trail."""
        bind = self._session.get_bind()
        if bind.dialect.name == "postgresql":
            self._session.execute(select(func.pg_advisory_xact_lock(TRAIL_LOCK)))
        else:
            # A write takes SQLite's one write lock until the transaction ends.
            self._session.execute(update(requests).where(text("0 = 1")).values(state=requests.c.state))

    def trail(self, request_id: int | None = None) -> builtins.list[TrailRow]:
        """The stored rows of one request's trail (or the whole table's), in order."""
        query = select(request_decisions).order_by(request_decisions.c.id)
        if request_id is not None:
            query = query.where(request_decisions.c.request_id == request_id)
        return [_trail_row(row) for row in self._session.execute(query)]

    def trails(self, request_ids: Collection[int]) -> dict[int, builtins.list[TrailRow]]:
        """The trails of several requests, read at once, each in order (an empty one for a request without rows)."""
        found: dict[int, builtins.list[TrailRow]] = {request_id: [] for request_id in request_ids}
        wanted = list(found)
        for start in range(0, len(wanted), IN_BATCH):
            query = (select(request_decisions)
                     .where(request_decisions.c.request_id.in_(wanted[start:start + IN_BATCH]))
                     .order_by(request_decisions.c.id))
            for row in self._session.execute(query):
                found[row.request_id].append(_trail_row(row))
        return found

    def append(
        self,
        request_id: int,
        decision: NewDecision,
        state: str,
        *,
        closed: bool = False,
        outcome: str | None = None,
        **values: Any,
    ) -> TrailRow:
        """Append *decision* to the trail and set the request's cached *state*
        (*closed*: it ends there; *outcome*, other *values*), in this transaction."""
        self.lock_trail()
        changes: dict[str, Any] = {"state": state, **values}
        if closed:
            changes["closed_at"] = decision.at
        if outcome is not None:
            changes["outcome"] = outcome
        self._session.execute(update(requests).where(requests.c.id == request_id).values(**changes))
        return _chain_append(self._session, request_id, decision)

    # ------------------------------------------------------------ people

    def people(self) -> builtins.list[UserFacts]:
        """Every user as eligibility sees it (name, normalised DN, disabled,
        approver role granted)."""
        approvers = {
            int(user_id)
            for (user_id,) in self._session.execute(
                select(user_roles.c.user_id).where(user_roles.c.role == Role.APPROVER.value)
            )
        }
        found = []
        for row in self._session.execute(select(users.c.id, users.c.name, users.c.dn, users.c.disabled)):
            try:
                dn = normalize_dn(row.dn) if row.dn else None
            except ConfigError:  # a user's DN that does not parse matches no group member
                dn = None
            found.append(UserFacts(row.name, dn, bool(row.disabled), int(row.id) in approvers))
        return found


def _chain_append(session: Session, request_id: int, decision: NewDecision) -> TrailRow:
    """Append one row to the hash chain of the whole trail (see
    :mod:`idsync.store.chain`), the caller holding the trail's lock."""
    row_id = chain.append(
        session,
        request_decisions,
        {
            "request_id": request_id, "at": decision.at, "actor": decision.actor, "action": decision.action,
            "comment": decision.comment, "detail": decision.detail,
        },
    )
    row = session.execute(select(request_decisions).where(request_decisions.c.id == row_id)).one()
    return _trail_row(row)


def _request(row: Row[Any]) -> RequestRow:
    return RequestRow(
        id=row.id,
        run_id=row.run_id,
        collection_name=row.collection_name,
        stores=tuple(s for s in str(row.store_name).split(STORE_SEPARATOR) if s),
        kind=row.kind,
        reason=row.reason,
        requested_by=row.requested_by,
        state=row.state,
        required_approvals=row.required_approvals,
        created_at=row.created_at,
        expires_at=row.expires_at,
        escalate_at=row.escalate_at,
        escalation_step=row.escalation_step,
        plans_at=row.plans_at,
        closed_at=row.closed_at,
        outcome=row.outcome,
    )


def _trail_row(row: Row[Any]) -> TrailRow:
    return TrailRow(
        row.actor, row.action, row.at, row.comment, dict(row.detail or {}),
        id=int(row.id), request_id=int(row.request_id), prev_hash=row.prev_hash, hash=row.hash,
    )
