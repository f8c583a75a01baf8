"""Users, the roles granted to them, the directory groups that grant roles, and API tokens, as stored.

The use cases that add, change and remove them live in ``services/users.py``
and ``services/tokens.py``; this module only reads and writes rows. Password
hashes and token hashes leave it only through the few methods that check them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idsync.domain.roles import Role
from idsync.errors import NotFoundError, StateConflictError, quoted
from idsync.store.tables import api_tokens, role_groups, user_roles, users, utcnow

GROUP_GRANT = "group "
"""How ``granted_by`` starts for a role held through a directory group
(``group <dn>``): such grants are refreshed at each sign-in."""


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


@dataclass(frozen=True)
class Grant:
    """A role held by a user: granted by a person, or through a directory group."""

    role: Role
    granted_by: str
    granted_at: datetime

    @property
    def through_group(self) -> str | None:
        """The group DN the role is held through, or None for a direct grant."""
        return self.granted_by[len(GROUP_GRANT):] if self.granted_by.startswith(GROUP_GRANT) else None


@dataclass(frozen=True)
class RoleGroup:
    """Members of *group_dn* in identity store *store_name* hold *role*."""

    id: int
    store_name: str
    group_dn: str
    role: Role
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class TokenRow:
    """An API token as stored, without its secret's hash."""

    id: int
    user_id: int
    user_name: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class UserRepository:
    """Reads and writes users, their roles and tokens; the caller's session
    decides when anything is committed."""

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

    def require(self, name: str) -> UserRow:
        """User *name*, or NotFoundError."""
        found = self.by_name(name)
        if found is None:
            raise NotFoundError(f"no user named {quoted(name)}", field="user")
        return found

    def all(self) -> list[UserRow]:
        return [_user(row) for row in self._session.execute(select(users).order_by(users.c.name))]

    def with_dn(self) -> list[UserRow]:
        """The users known by a directory DN (who may hold roles through a group)."""
        return [_user(row) for row in self._session.execute(select(users).where(users.c.dn.is_not(None)))]

    def roles(self, user_id: int) -> frozenset[Role]:
        """The roles user *user_id* holds: granted directly, or through a
        directory group as resolved at its last sign-in."""
        return frozenset(grant.role for grant in self.grants(user_id))

    def grants(self, user_id: int) -> list[Grant]:
        """Each role user *user_id* holds, with who or which group granted it."""
        found = self._session.execute(
            select(user_roles).where(user_roles.c.user_id == user_id).order_by(user_roles.c.role)
        )
        return [
            Grant(Role(row.role), row.granted_by, row.granted_at)
            for row in found
            if row.role in Role.__members__.values()
        ]

    def password_hash(self, user_id: int) -> str | None:
        return self._session.execute(select(users.c.password_hash).where(users.c.id == user_id)).scalar_one_or_none()

    # ------------------------------------------------------------ writes

    def add(
        self,
        *,
        name: str,
        display_name: str = "",
        email: str | None = None,
        os_user: str | None = None,
        password_hash: str | None = None,
        source: str = "local",
        store_name: str | None = None,
        dn: str | None = None,
    ) -> UserRow:
        """A new user; StateConflictError when its name or OS account is taken."""
        for column, value, what in ((users.c.name, name, "name"), (users.c.os_user, os_user, "os_user")):
            owner = self._session.execute(select(users.c.name).where(column == value)).scalar() if value else None
            if owner is not None:
                raise StateConflictError(
                    f"user {quoted(owner)} already has the {what} {quoted(value)}", field=what
                )
        now = utcnow()
        try:
            self._session.execute(insert(users).values(
                name=name, display_name=display_name, email=email, os_user=os_user,
                password_hash=password_hash, source=source, store_name=store_name, dn=dn,
                disabled=False, created_at=now, updated_at=now,
            ))
        except IntegrityError as exc:  # a concurrent add of the same name
            raise StateConflictError(f"user {quoted(name)} already exists", field="name") from exc
        return self.require(name)

    def set_password_hash(self, user_id: int, password_hash: str | None) -> None:
        self._session.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash, updated_at=utcnow())
        )

    def set_disabled(self, user_id: int, disabled: bool) -> None:
        self._session.execute(
            update(users).where(users.c.id == user_id).values(disabled=disabled, updated_at=utcnow())
        )

    def remove(self, user_id: int) -> None:
        """Delete the user with its roles and tokens (deleted explicitly: SQLite
        enforces ON DELETE CASCADE only with foreign keys switched on)."""
        self._session.execute(delete(api_tokens).where(api_tokens.c.user_id == user_id))
        self._session.execute(delete(user_roles).where(user_roles.c.user_id == user_id))
        self._session.execute(delete(users).where(users.c.id == user_id))

    def grant(self, user_id: int, role: Role, granted_by: str) -> bool:
        """Grant *role*; False when the user held it already (the grant is kept as it was)."""
        exists = self._session.execute(
            select(user_roles.c.role).where(user_roles.c.user_id == user_id, user_roles.c.role == role.value)
        ).first()
        if exists:
            return False
        self._session.execute(
            insert(user_roles).values(user_id=user_id, role=role.value, granted_by=granted_by, granted_at=utcnow())
        )
        return True

    def revoke(self, user_id: int, role: Role) -> bool:
        """Take *role* away; False when the user did not hold it."""
        result = self._session.execute(
            delete(user_roles).where(user_roles.c.user_id == user_id, user_roles.c.role == role.value)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_group_grants(self, user_id: int, held: dict[Role, str]) -> tuple[set[Role], set[Role]]:
        """Make the roles *user_id* holds through groups exactly *held* (role →
        group DN); a direct grant of a role is left alone. Returns the roles
        added and removed."""
        current = {g.role: g for g in self.grants(user_id)}
        added: set[Role] = set()
        removed: set[Role] = set()
        for role, grant in current.items():
            if grant.through_group is not None and role not in held:
                self.revoke(user_id, role)
                removed.add(role)
        for role, group_dn in held.items():
            if role not in current:
                self.grant(user_id, role, GROUP_GRANT + group_dn)
                added.add(role)
        return added, removed

    def enabled_holders(self, role: Role) -> list[str]:
        """The names of the enabled users granted *role*."""
        query = (
            select(users.c.name)
            .join(user_roles, user_roles.c.user_id == users.c.id)
            .where(user_roles.c.role == role.value, users.c.disabled.is_(False))
            .order_by(users.c.name)
        )
        return list(self._session.execute(query).scalars())

    # ------------------------------------------------------------ role groups

    def role_groups(self, store_name: str | None = None) -> list[RoleGroup]:
        query = select(role_groups).order_by(role_groups.c.store_name, role_groups.c.group_dn, role_groups.c.role)
        if store_name is not None:
            query = query.where(role_groups.c.store_name == store_name)
        return [
            RoleGroup(row.id, row.store_name, row.group_dn, Role(row.role), row.created_by, row.created_at)
            for row in self._session.execute(query)
        ]

    def add_role_group(self, store_name: str, group_dn: str, role: Role, created_by: str) -> bool:
        """Map the group to *role*; False when it was mapped already."""
        exists = self._session.execute(select(role_groups.c.id).where(
            role_groups.c.store_name == store_name, role_groups.c.group_dn == group_dn, role_groups.c.role == role.value,
        )).first()
        if exists:
            return False
        self._session.execute(insert(role_groups).values(
            store_name=store_name, group_dn=group_dn, role=role.value, created_by=created_by, created_at=utcnow(),
        ))
        return True

    def remove_role_group(self, group_id: int) -> None:
        self._session.execute(delete(role_groups).where(role_groups.c.id == group_id))

    # ------------------------------------------------------------ tokens

    def add_token(
        self, user_id: int, name: str, prefix: str, secret_hash: str, expires_at: datetime | None
    ) -> TokenRow:
        exists = self._session.execute(
            select(api_tokens.c.id).where(api_tokens.c.user_id == user_id, api_tokens.c.name == name)
        ).first()
        if exists:
            raise StateConflictError(f"a token named {quoted(name)} exists already for this user", field="name")
        self._session.execute(insert(api_tokens).values(
            user_id=user_id, name=name, prefix=prefix, secret_hash=secret_hash,
            created_at=utcnow(), expires_at=expires_at,
        ))
        found = self.token_by_prefix(prefix)
        assert found is not None
        return found[0]

    def tokens(self, user_id: int | None = None) -> list[TokenRow]:
        query = _token_query().order_by(users.c.name, api_tokens.c.name)
        if user_id is not None:
            query = query.where(api_tokens.c.user_id == user_id)
        return [_token(row) for row in self._session.execute(query)]

    def token_by_prefix(self, prefix: str) -> tuple[TokenRow, str] | None:
        """The token whose public prefix is *prefix*, with its secret's hash."""
        row = self._session.execute(_token_query().where(api_tokens.c.prefix == prefix)).first()
        return (_token(row), row.secret_hash) if row is not None else None

    def revoke_token(self, token_id: int, at: datetime) -> None:
        self._session.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=at))

    def token_used(self, token_id: int, at: datetime) -> None:
        self._session.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=at))


def _token_query() -> Any:
    return select(api_tokens, users.c.name.label("user_name")).join(users, users.c.id == api_tokens.c.user_id)


def _token(row: Row[Any]) -> TokenRow:
    return TokenRow(
        id=row.id,
        user_id=row.user_id,
        user_name=row.user_name,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


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
