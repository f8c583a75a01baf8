"""Stored definitions of identity stores, data sources, jobs, collections and schedules.

The kinds share one table shape and one repository: a unique name,
the definition's type (``ldap``, ``csv``, ...), its validated JSON body with
the secrets taken out, and the secrets as one encrypted token. Validation
is the services' job (pydantic models); this layer stores what it is given.

Every write leaves an audit entry in the same transaction. The entry says
which top-level keys of the body changed and, for secrets, only that they
changed: never a value.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, Table, delete, insert, select, update
from sqlalchemy.orm import Session

from idsync.errors import NotFoundError, VersionConflictError, quoted
from idsync.store import audit
from idsync.store.secrets import SecretBox
from idsync.store.tables import DEFINITION_TABLES, utcnow

DefinitionKind = Literal["store", "source", "job", "collection", "schedule", "smart_group", "smart_group_job"]
PutResult = Literal["created", "updated", "unchanged"]

NOUNS: dict[str, str] = {
    "store": "identity store",
    "source": "data source",
    "job": "job",
    "collection": "job collection",
    "schedule": "schedule",
    "smart_group": "smart group",
    "smart_group_job": "smart group update job",
}
"""How each kind is named in messages."""

SECRETS_CHANGED = "secrets changed"


@dataclass(frozen=True)
class StoredDefinition:
    """A definition as stored: body without secrets, secrets still encrypted."""

    id: int
    kind: str
    name: str
    type: str
    body: dict[str, Any]
    secrets_token: str | None
    created_at: datetime
    updated_at: datetime


class DefinitionRepository:
    """The definitions of one kind.

    *box* decides whether two secret tokens hold the same secrets (tokens of
    equal secrets differ); by default the installation's key is used, and
    only when both an old and a new token exist.
    """

    def __init__(
        self,
        session: Session,
        kind: DefinitionKind,
        *,
        box: SecretBox | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if kind not in DEFINITION_TABLES:
            raise ValueError(f"unknown definition kind {kind!r}")
        self._session = session
        self.kind: str = kind
        self._table: Table = DEFINITION_TABLES[kind]
        self._box = box
        self._clock = clock

    @property
    def noun(self) -> str:
        return NOUNS[self.kind]

    def get(self, name: str) -> StoredDefinition | None:
        row = self._session.execute(select(self._table).where(self._table.c.name == name)).first()
        return self._definition(row) if row is not None else None

    def require(self, name: str) -> StoredDefinition:
        found = self.get(name)
        if found is None:
            raise NotFoundError(f"no {self.noun} named {quoted(name)}", hint=f"list the {self.kind.replace('_', ' ')}s")
        return found

    def list(self) -> builtins.list[StoredDefinition]:
        """Every definition of this kind, by name."""
        rows = self._session.execute(select(self._table).order_by(self._table.c.name))
        return [self._definition(row) for row in rows]

    def put(
        self,
        name: str,
        type: str,
        body: dict[str, Any],
        secrets_token: str | None,
        actor: str,
        *,
        based_on: StoredDefinition | None = None,
    ) -> PutResult:
        """Create or replace the definition *name*; "unchanged" writes nothing at all.

        With *based_on* (the stored version an edit was made from), the write
        happens only if that version is still the stored one, checked by the
        UPDATE itself (compare and set), so an edit saved by someone else in
        between is refused with VersionConflictError, never overwritten.
        """
        current = self.get(name)
        if based_on is not None and (current is None or current.updated_at != based_on.updated_at):
            raise _version_conflict(self.noun, name)
        now = self._clock()
        if current is None:
            self._session.execute(
                insert(self._table).values(
                    name=name,
                    type=type,
                    body=body,
                    secrets=secrets_token,
                    created_at=now,
                    updated_at=now,
                )
            )
            detail: dict[str, Any] = {"type": type, "changed": sorted(body)}
            if secrets_token:
                detail["secrets"] = SECRETS_CHANGED
            self._audit(actor, "create", name, detail)
            return "created"

        changed = changed_keys(current.body, body)
        if current.type != type:
            changed = sorted({*changed, "type"})
        secrets_changed = not self._same_secrets(current.secrets_token, secrets_token)
        if not changed and not secrets_changed:
            return "unchanged"
        condition = self._table.c.id == current.id
        if based_on is not None:
            condition = condition & (self._table.c.updated_at == based_on.updated_at)
        result = self._session.execute(
            update(self._table)
            .where(condition)
            .values(
                type=type,
                body=body,
                # Equal secrets keep their old token, so "unchanged" stays stable.
                secrets=secrets_token if secrets_changed else current.secrets_token,
                updated_at=now,
            )
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise _version_conflict(self.noun, name)
        detail = {"type": type, "changed": changed}
        if secrets_changed:
            detail["secrets"] = SECRETS_CHANGED
        self._audit(actor, "update", name, detail)
        return "updated"

    def remove(self, name: str, actor: str) -> bool:
        """Delete *name*; runs and plans that named it keep their history. False if absent."""
        result = self._session.execute(delete(self._table).where(self._table.c.name == name))
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        self._audit(actor, "delete", name, {})
        return True

    # ------------------------------------------------------------ helpers

    def _same_secrets(self, old: str | None, new: str | None) -> bool:
        if old == new:
            return True
        if not old or not new:
            return False
        if self._box is None:
            self._box = SecretBox.from_settings()
        return self._box.same(old, new)

    def _audit(self, actor: str, action: str, name: str, detail: dict[str, Any]) -> None:
        audit.record(
            self._session,
            actor=actor,
            action=action,
            object_kind=self.kind,
            object_name=name,
            detail=detail,
            clock=self._clock,
        )

    def _definition(self, row: Row[Any]) -> StoredDefinition:
        return StoredDefinition(
            id=row.id,
            kind=self.kind,
            name=row.name,
            type=row.type,
            body=dict(row.body),
            secrets_token=row.secrets,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def _version_conflict(noun: str, name: str) -> VersionConflictError:
    return VersionConflictError(
        f"{noun} {quoted(name)} changed since it was read", field="version",
        hint="read it again, apply the edit to that version, and save again",
    )


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The top-level keys added, removed or given another value, sorted."""
    return sorted(key for key in old.keys() | new.keys() if old.get(key, _MISSING) != new.get(key, _MISSING))


_MISSING = object()
