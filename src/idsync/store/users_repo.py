"""Users and the roles granted to them, as stored.

Reads only what deciding a principal's rights needs; the use cases that add,
change and remove users live in ``services/users.py`` and write through
:class:`UserRepository` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from idsync.domain.roles import Role
from idsync.store.tables import user_roles, users


@dataclass(frozen=True)
class UserRow:
    """A user as stored, without its password hash."""

    id: int
    name: str
    display_name: str
    email: str | None
    os_user: str | None
    source: str
    store_name: str | None
    dn: str | None
    disabled: bool
    created_at: datetime
    updated_at: datetime


class UserRepository:
    """Reads users; the caller's session decides when anything is committed."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def count(self) -> int:
        """How many users exist, disabled ones included."""
        return int(self._session.execute(select(func.count()).select_from(users)).scalar_one())

    def by_name(self, name: str) -> UserRow | None:
        row = self._session.execute(select(users).where(users.c.name == name)).first()
        return _user(row) if row is not None else None

    def by_os_user(self, os_user: str) -> UserRow | None:
        row = self._session.execute(select(users).where(users.c.os_user == os_user)).first()
        return _user(row) if row is not None else None

    def with_dn(self) -> list[UserRow]:
        """The users known by a directory DN (who may hold roles through a group)."""
        return [_user(row) for row in self._session.execute(select(users).where(users.c.dn.is_not(None)))]

    def roles(self, user_id: int) -> frozenset[Role]:
        """The roles granted to user *user_id* itself (not through a directory group)."""
        found = self._session.execute(select(user_roles.c.role).where(user_roles.c.user_id == user_id))
        return frozenset(Role(value) for (value,) in found if value in Role.__members__.values())


def _user(row: Row[Any]) -> UserRow:
    return UserRow(
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        email=row.email,
        os_user=row.os_user,
        source=row.source,
        store_name=row.store_name,
        dn=row.dn,
        disabled=bool(row.disabled),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
