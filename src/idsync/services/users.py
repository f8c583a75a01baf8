"""Users, their roles, and the directory groups that grant roles [S9.4].

Every change here needs the role admin, except a user changing their own
password (with the old one). Every change is written to the audit log in the
same transaction, never with a password. Two refusals keep idsync
administrable: the first user must be an administrator (until then the
operating-system account running the CLI is), and the last enabled
administrator can be neither disabled, removed, nor have the role taken away.

Passwords are hashed with argon2id (argon2-cffi's defaults); a hash made with
older parameters is replaced at the next successful check.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from idsync.domain.dn import normalize_dn
from idsync.domain.roles import Role
from idsync.errors import (
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    StateConflictError,
    quoted,
)
from idsync.services import authz, definitions
from idsync.services.workspace import Workspace
from idsync.store import audit
from idsync.store.users_repo import Grant, RoleGroup, TokenRow, UserRepository, UserRow

MIN_PASSWORD_LENGTH = 8
SOURCES = ("local", "directory")

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to check a password against when the user does not exist, so an
    unknown name takes as long as a wrong password; made on first use (it
    costs as much as a sign-in, which a command that signs nobody in should
    not pay)."""
    return _hasher.hash("an idsync password nobody has")
"""Checked against when no user or hash is found, so a wrong name takes as
long as a wrong password and the answer does not tell which it was."""


@dataclass(frozen=True)
class UserDetail:
    """A user as shown: who, how it signs in, its roles and tokens (never a secret)."""

    user: UserRow
    grants: list[Grant] = field(default_factory=list)
    tokens: list[TokenRow] = field(default_factory=list)
    has_password: bool = False

    @property
    def roles(self) -> list[str]:
        return sorted({grant.role.value for grant in self.grants})


# ------------------------------------------------------------------ passwords


def hash_password(password: str) -> str:
    """The argon2id hash of *password*, once it is long enough."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters", field="password")
    return _hasher.hash(password)


def check_password(session: Session, user: UserRow | None, password: str) -> bool:
    """Whether *password* is *user*'s; rehashes it when the hash's parameters
    are not today's. Takes as long for a missing user or hash as for a wrong password."""
    repo = UserRepository(session)
    stored = repo.password_hash(user.id) if user is not None else None
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    if user is None or stored is None:
        return False
    if _hasher.check_needs_rehash(stored):
        repo.set_password_hash(user.id, _hasher.hash(password))
    return True


# ------------------------------------------------------------------ reads


def list_users(ws: Workspace) -> list[UserDetail]:
    """Every user with its roles (admins only: the list says who holds which role)."""
    authz.require(ws, Role.ADMIN, "list users")
    with ws.db.session() as session:
        repo = UserRepository(session)
        return [
            UserDetail(user, repo.grants(user.id), has_password=repo.password_hash(user.id) is not None)
            for user in repo.all()
        ]


def show_user(ws: Workspace, name: str) -> UserDetail:
    """User *name*, its roles and tokens; a user may see itself."""
    authz.require_self_or(ws, name, Role.ADMIN, "show other users")
    with ws.db.session() as session:
        repo = UserRepository(session)
        user = repo.require(name)
        return UserDetail(
            user, repo.grants(user.id), repo.tokens(user.id), has_password=repo.password_hash(user.id) is not None
        )


# ------------------------------------------------------------------ changes


def add_user(
    ws: Workspace,
    name: str,
    *,
    display_name: str = "",
    email: str | None = None,
    os_user: str | None = None,
    password: str | None = None,
    roles: Iterable[Role] = (),
    source: str = "local",
    store: str | None = None,
    dn: str | None = None,
) -> UserDetail:
    """Add a user. A local user signs in with *password* (or only through its
    OS account or tokens, without one); a ``directory`` user by a bind to
    identity store *store* as *dn*."""
    authz.require(ws, Role.ADMIN, "add users")
    name = _checked_name(name)
    granted = sorted(set(roles))
    password_hash = _sign_in_fields(ws, source, password, store, dn)
    with ws.db.session() as session:
        repo = UserRepository(session)
        if repo.count() == 0 and Role.ADMIN not in granted:
            raise StateConflictError(
                f"the first user ({quoted(name)}) must hold the role admin: until then the account "
                "running idsync is its administrator, and afterwards nobody could administer idsync",
                field="role", hint="grant it the role admin, and map it to your operating-system account",
            )
        user = repo.add(
            name=name, display_name=display_name, email=email or None, os_user=os_user or None,
            password_hash=password_hash, source=source, store_name=store,
            dn=dn.strip() if dn else None,  # bound as written; compared normalised
        )
        for role in granted:
            repo.grant(user.id, role, ws.actor)
        _audit(session, ws, "user.add", name, {
            "roles": [r.value for r in granted], "source": source, "os_user": os_user, "password": password is not None,
        })
        session.commit()
        return UserDetail(user, repo.grants(user.id), has_password=password_hash is not None)


def change_password(ws: Workspace, name: str, new: str, *, old: str | None = None) -> None:
    """Set user *name*'s password. A user changing its own must give the old
    one (when it has one); an administrator may set anyone else's without it."""
    found = authz.require_self_or(ws, name, Role.ADMIN, "change the passwords of other users")
    own = found.user is not None and found.user.name == name
    with ws.db.session() as session:
        repo = UserRepository(session)
        user = repo.require(name)
        if user.source != "local":
            raise StateConflictError(
                f"user {quoted(name)} signs in through identity store {quoted(user.store_name)}: "
                "its password is the directory's", field="user",
            )
        if own and repo.password_hash(user.id) is not None and (old is None or not check_password(session, user, old)):
            raise PermissionDeniedError(
                f"the current password of user {quoted(name)} was not given, or is not the one given",
                field="password",
            )
        repo.set_password_hash(user.id, hash_password(new))
        _audit(session, ws, "user.passwd", name, {})
        session.commit()


def set_disabled(ws: Workspace, name: str, disabled: bool) -> UserRow:
    """Disable user *name* (it keeps its roles, and holds none while
    disabled; its tokens stop working) or enable it again."""
    authz.require(ws, Role.ADMIN, "disable users" if disabled else "enable users")
    with ws.db.session() as session:
        repo = UserRepository(session)
        user = repo.require(name)
        if disabled:
            _keep_an_admin(repo, user, "disable")
        repo.set_disabled(user.id, disabled)
        _audit(session, ws, "user.disable" if disabled else "user.enable", name, {})
        session.commit()
        return repo.require(name)


def remove_user(ws: Workspace, name: str) -> None:
    """Remove user *name* with its roles and tokens (what it did stays recorded under its name)."""
    authz.require(ws, Role.ADMIN, "remove users")
    with ws.db.session() as session:
        repo = UserRepository(session)
        user = repo.require(name)
        _keep_an_admin(repo, user, "remove")
        repo.remove(user.id)
        _audit(session, ws, "user.remove", name, {})
        session.commit()


def grant(ws: Workspace, name: str, roles: Iterable[Role]) -> list[Role]:
    """Grant *roles* to user *name*; the roles it did not hold yet."""
    authz.require(ws, Role.ADMIN, "grant roles")
    with ws.db.session() as session:
        repo = UserRepository(session)
        user = repo.require(name)
        added = [role for role in sorted(set(roles)) if repo.grant(user.id, role, ws.actor)]
        if added:
            _audit(session, ws, "user.grant", name, {"roles": [r.value for r in added]})
        session.commit()
        return added


def revoke(ws: Workspace, name: str, roles: Iterable[Role]) -> list[Role]:
    """Take *roles* from user *name*; the roles it held. A role held through a
    directory group comes back at its next sign-in while it is a member."""
    authz.require(ws, Role.ADMIN, "revoke roles")
    with ws.db.session() as session:
        repo = UserRepository(session)
        user = repo.require(name)
        wanted = sorted(set(roles))
        if Role.ADMIN in wanted:
            _keep_an_admin(repo, user, "take the role admin from")
        removed = [role for role in wanted if repo.revoke(user.id, role)]
        if removed:
            _audit(session, ws, "user.revoke", name, {"roles": [r.value for r in removed]})
        session.commit()
        return removed


# ------------------------------------------------------------------ roles through directory groups


def add_role_group(ws: Workspace, store: str, group_dn: str, role: Role) -> RoleGroup:
    """Members of *group_dn* in identity store *store* hold *role* (from their next sign-in)."""
    authz.require(ws, Role.ADMIN, "map directory groups to roles")
    definitions.load(ws, "store", store)  # NotFoundError for an unknown store
    group_dn = normalize_dn(group_dn)
    with ws.db.session() as session:
        repo = UserRepository(session)
        if not repo.add_role_group(store, group_dn, role, ws.actor):
            raise StateConflictError(
                f"members of {quoted(group_dn)} in store {quoted(store)} hold the role {role} already", field="group"
            )
        _audit(session, ws, "role_group.add", f"{store}:{group_dn}", {"role": role.value}, kind="role_group")
        session.commit()
        return next(g for g in repo.role_groups(store) if g.group_dn == group_dn and g.role == role)


def list_role_groups(ws: Workspace, store: str | None = None) -> list[RoleGroup]:
    authz.require(ws, Role.ADMIN, "list the roles granted to directory groups")
    with ws.db.session() as session:
        return UserRepository(session).role_groups(store)


def remove_role_group(ws: Workspace, store: str, group_dn: str, role: Role | None = None) -> list[RoleGroup]:
    """Stop granting roles (*role*, or every role) to members of the group; the
    roles they hold through it go at their next sign-in."""
    authz.require(ws, Role.ADMIN, "map directory groups to roles")
    group_dn = normalize_dn(group_dn)
    with ws.db.session() as session:
        repo = UserRepository(session)
        found = [g for g in repo.role_groups(store) if g.group_dn == group_dn and role in (None, g.role)]
        if not found:
            what = f"the role {role}" if role else "any role"
            raise NotFoundError(
                f"members of {quoted(group_dn)} in store {quoted(store)} are not granted {what}", field="group"
            )
        for group in found:
            repo.remove_role_group(group.id)
            _audit(session, ws, "role_group.remove", f"{store}:{group_dn}", {"role": group.role.value},
                   kind="role_group")
        session.commit()
        return found


# ------------------------------------------------------------------ helpers


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200 or any(c.isspace() or not c.isprintable() for c in name):
        raise ConfigError(f"user name {quoted(name)} is not valid: 1 to 200 printable characters, no spaces",
                          field="name")
    return name


def _sign_in_fields(ws: Workspace, source: str, password: str | None, store: str | None, dn: str | None) -> str | None:
    """The password hash of a new user, once its way of signing in is consistent."""
    if source not in SOURCES:
        raise ConfigError(f"user source {quoted(source)} is not known; use {' or '.join(SOURCES)}", field="source")
    if source == "local":
        if store or dn:
            raise ConfigError("a local user has no identity store or DN: give both with the source directory",
                              field="source")
        return hash_password(password) if password is not None else None
    if password is not None:
        raise ConfigError("a directory user signs in with its directory password: idsync keeps none",
                          field="password")
    if not store or not dn:
        raise ConfigError("a directory user needs the identity store it signs in to and its DN there", field="dn")
    normalize_dn(dn)  # ConfigError for a DN that is not one
    loaded = definitions.load(ws, "store", store)
    if loaded.definition.kind != "ldap":
        raise ConfigError(f"store {quoted(store)} is not an LDAP server: directory users sign in by an LDAP bind",
                          field="store")
    return None


def _keep_an_admin(repo: UserRepository, user: UserRow, doing: str) -> None:
    """Refuse to leave idsync without an enabled administrator."""
    admins = repo.enabled_holders(Role.ADMIN)
    if admins == [user.name]:
        raise StateConflictError(
            f"cannot {doing} user {quoted(user.name)}: it is the last enabled administrator, "
            "and nobody could administer idsync afterwards",
            hint="grant the role admin to another user first",
        )


def _audit(session: Session, ws: Workspace, action: str, name: str, detail: dict[str, object], *,
           kind: str = "user") -> None:
    roles: Any = detail.get("roles") or ([detail["role"]] if "role" in detail else [])
    if roles:  # what the audit list shows as "what changed"
        detail = {**detail, "changed": [f"role {role}" for role in roles]}
    audit.record(session, actor=ws.actor, action=action, object_kind=kind, object_name=name, detail=detail)
