"""Users for service tests, inserted straight into the tables: these tests
need only rows that say who holds which role, not the users service's
checks (tested on their own in tests/unit/test_users.py)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert

from idsync.services.workspace import Workspace
from idsync.store.tables import user_roles, users, utcnow


def add_user(
    ws: Workspace,
    name: str,
    roles: Iterable[str],
    os_user: str | None = None,
    dn: str | None = None,
    *,
    disabled: bool = False,
) -> int:
    """A user *name* holding *roles*; its id."""
    now = utcnow()
    with ws.db.session() as session:
        result = session.execute(
            insert(users).values(
                name=name, os_user=os_user, dn=dn, source="directory" if dn else "local",
                disabled=disabled, created_at=now, updated_at=now,
            )
        )
        user_id = int(result.inserted_primary_key[0])  # type: ignore[attr-defined]
        for role in roles:
            session.execute(insert(user_roles).values(user_id=user_id, role=role, granted_by="test", granted_at=now))
    return user_id
