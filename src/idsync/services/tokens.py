"""API tokens: a user's credentials for scripts, the CLI (``IDSYNC_TOKEN``) and the REST API.

A token reads ``idsync_<prefix>_<secret>``. The prefix is public: it finds
the token's row and is what lists show. Only the SHA-256 of the secret is
stored, so the database never holds a usable token; the whole token is
shown once, when created. A token acts as its user, with the user's roles
at the time of use: disabling the user stops its tokens.

A user manages its own tokens; an administrator manages anyone's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.errors import AuthError, ConfigError, NotFoundError, StateConflictError, quoted
from idsync.services import authz
from idsync.services.workspace import Workspace
from idsync.store import audit
from idsync.store.tables import utcnow
from idsync.store.users_repo import TokenRow, UserRepository

PREFIX = "idsync"
BAD_TOKEN = "the API token is not valid: it is unknown, revoked or expired, or its user is disabled"  # noqa: S105 (a message, not a password)
"""One message for every refused token, so a refusal says nothing about which tokens exist."""


@dataclass(frozen=True)
class NewToken:
    """A token just created: *token* is the only copy of the secret there will ever be."""

    row: TokenRow
    token: str


def create(
    ws: Workspace,
    name: str,
    *,
    user: str | None = None,
    expires: timedelta | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> NewToken:
    """A new token *name* for *user* (default: the acting user), valid for
    *expires* (default: until revoked)."""
    owner = _owner(ws, user, "create tokens for other users")
    name = name.strip()
    if not name or len(name) > 200:
        raise ConfigError(f"token name {quoted(name)} is not valid: 1 to 200 characters", field="name")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    expires_at = clock() + expires if expires is not None else None
    with ws.db.session() as session:
        repo = UserRepository(session)
        found = repo.require(owner)
        row = repo.add_token(found.id, name, prefix, _digest(secret), expires_at)
        audit.record(session, actor=ws.actor, action="token.create", object_kind="token",
                     object_name=f"{owner}/{name}", detail={"prefix": prefix, "expires_at": _text(expires_at)})
        session.commit()
    return NewToken(row, f"{PREFIX}_{prefix}_{secret}")


def list_tokens(ws: Workspace, *, user: str | None = None, every_user: bool = False) -> list[TokenRow]:
    """The tokens of *user* (default: the acting user), or of every user; never a secret."""
    if every_user:
        authz.require(ws, Role.ADMIN, "list the tokens of every user")
        with ws.db.session() as session:
            return UserRepository(session).tokens()
    owner = _owner(ws, user, "list the tokens of other users")
    with ws.db.session() as session:
        repo = UserRepository(session)
        return repo.tokens(repo.require(owner).id)


def revoke(ws: Workspace, name: str, *, user: str | None = None, clock: Callable[[], datetime] = utcnow) -> TokenRow:
    """Revoke token *name* (its name or its prefix) of *user* (default: the acting user)."""
    owner = _owner(ws, user, "revoke the tokens of other users")
    with ws.db.session() as session:
        repo = UserRepository(session)
        tokens = repo.tokens(repo.require(owner).id)
        found = next((t for t in tokens if name in (t.name, t.prefix)), None)
        if found is None:
            raise NotFoundError(f"user {quoted(owner)} has no token {quoted(name)}", field="token")
        if found.revoked_at is not None:
            raise StateConflictError(f"token {quoted(found.name)} of user {quoted(owner)} is revoked already")
        repo.revoke_token(found.id, clock())
        audit.record(session, actor=ws.actor, action="token.revoke", object_kind="token",
                     object_name=f"{owner}/{found.name}", detail={"prefix": found.prefix})
        session.commit()
        return next(t for t in repo.tokens(found.user_id) if t.id == found.id)


def authenticate_token(ws: Workspace, token: str, *, clock: Callable[[], datetime] = utcnow) -> Principal:
    """The user *token* acts for; AuthError (one message for every cause) when
    it is malformed, unknown, revoked or expired, or its user is disabled."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        raise AuthError(BAD_TOKEN)
    now = clock()
    with ws.db.session() as session:
        repo = UserRepository(session)
        found = repo.token_by_prefix(parts[1])
        if found is None:
            hmac.compare_digest(_digest(parts[2]), _digest(""))  # the same work as a known prefix
            raise AuthError(BAD_TOKEN)
        row, stored = found
        user = repo.by_name(row.user_name)
        valid = (
            hmac.compare_digest(_digest(parts[2]), stored)
            and row.revoked_at is None
            and (row.expires_at is None or row.expires_at > now)
            and user is not None
            and not user.disabled
        )
        if not valid or user is None:
            raise AuthError(BAD_TOKEN)
        repo.token_used(row.id, now)
        session.commit()
    return Principal(user.name, "user")


def _owner(ws: Workspace, user: str | None, action: str) -> str:
    """The user whose tokens are meant: *user*, or the acting user. Another
    user's need the role admin."""
    found = authz.rights(ws)
    me = found.user.name if found.user is not None and not found.user.disabled else None
    if user is None:
        if me is None:
            raise StateConflictError(
                f"{ws.actor!r} acts as no user of idsync, so it has no tokens of its own", field="user",
                hint="name the user whose tokens are meant",
            )
        return me
    if user != me:
        authz.require(ws, Role.ADMIN, action)
    return user


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _text(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
