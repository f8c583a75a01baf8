"""The audit trail: who changed which configuration, or decided what, and when.

Append-only by construction: this module can add entries and read them,
nothing else, and the database refuses UPDATE and DELETE on the table
(revision 0008). Entries are hash-chained (:mod:`idsync.store.chain`), so an
entry edited, deleted or slipped in by someone with access to the database
is found by :func:`idsync.store.chain.verify`. An entry is written in the
same session as the change it records, so a change and its audit entry are
committed (or lost) together. Details never hold secret values; callers
pass key names and short words.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from idsync.store import chain
from idsync.store.chain import ChainReport
from idsync.store.keyset import Position, older_than
from idsync.store.tables import audit_log, request_decisions, utcnow

TRAILS = {"audit trail": audit_log, "decision trail": request_decisions}
"""The hash-chained tables, by what they are called: the audit log of
configuration changes, runs and role changes; the decisions on requests."""


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action."""

    id: int
    at: datetime
    actor: str
    action: str
    object_kind: str
    object_name: str
    detail: dict[str, Any] = field(default_factory=dict)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_kind: str,
    object_name: str,
    detail: Mapping[str, Any] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """Append one entry to the audit trail; its id."""
    return chain.append(session, audit_log, {
        "at": clock(),
        "actor": actor,
        "action": action,
        "object_kind": object_kind,
        "object_name": object_name,
        "detail": dict(detail or {}),
    })


def record_many(session: Session, entries: Sequence[Mapping[str, Any]]) -> list[int]:
    """Append several entries at once, in order (one lock on the trail for
    them all); their ids. Each entry holds :func:`record`'s arguments but
    the session, with ``at`` for the clock's reading."""
    return chain.append_many(session, audit_log, [
        {
            "at": entry["at"],
            "actor": entry["actor"],
            "action": entry["action"],
            "object_kind": entry["object_kind"],
            "object_name": entry["object_name"],
            "detail": dict(entry.get("detail") or {}),
        }
        for entry in entries
    ])


def verify_trails(session: Session, *, look_for: Collection[str] = ()) -> dict[str, ChainReport]:
    """Each trail of :data:`TRAILS` walked and checked, in one snapshot of a
    fresh *session* (see :func:`idsync.store.chain.verify`)."""
    return {name: chain.verify(session, table, look_for=look_for) for name, table in TRAILS.items()}


def list_entries(
    session: Session,
    *,
    limit: int = 100,
    object_kind: str | None = None,
    object_name: str | None = None,
    after: Position | None = None,
) -> list[AuditEntry]:
    """The newest entries first, optionally those of one kind or one object;
    with *after*, those after that position (keyset pagination)."""
    query = select(audit_log)
    if after is not None:
        query = query.where(older_than(audit_log.c.at, audit_log.c.id, after))
    if object_kind is not None:
        query = query.where(audit_log.c.object_kind == object_kind)
    if object_name is not None:
        query = query.where(audit_log.c.object_name == object_name)
    query = query.order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
    return [_entry(row) for row in session.execute(query)]


def _entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        object_kind=row.object_kind,
        object_name=row.object_name,
        detail=dict(row.detail or {}),
    )
