"""Who may do what: the roles of the acting principal, checked by every use case [S9.4].

A use case calls :func:`require` before it reads or changes anything; the
refusal is a :class:`~idsync.errors.PermissionDeniedError` naming the role
needed, so each front end reports it its own way (exit code 8, HTTP 403).

Where a principal's roles come from:

- ``system`` (a schedule firing, the demo): administrator, operator and
  auditor; never an approver, so nothing approves itself.
- ``os-user`` (the CLI): the idsync user whose ``os_user`` is this account.
  While no user exists at all, the account is the bootstrap administrator,
  so a new installation and an upgraded one keep working until users are
  added. Whoever can open the database directly can change anything in it,
  users included: that is an administrator whatever this module says.
- ``user`` (a signed-in user, a token, or the CLI's account mapped to a
  user): the roles granted to that user, including those its directory
  groups granted at its last sign-in.

While no user exists at all, any principal is the bootstrap administrator.
A front end serving several people gets a ``user`` principal only from a
sign-in or a token, which need a user, so this reaches only the CLI and
code calling the services in-process (a new installation, the tests).

A disabled user, or an account mapped to none, has no role at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from idsync.domain.principals import Principal
from idsync.domain.roles import ROLES, Role, effective
from idsync.errors import PermissionDeniedError
from idsync.services.workspace import Workspace
from idsync.store.db import Database
from idsync.store.users_repo import UserRepository, UserRow

SYSTEM_ROLES = effective(frozenset({Role.ADMIN}))
"""What idsync acting on its own may do: everything but approve."""

ANY_ROLE: tuple[Role, ...] = ROLES
"""Reading definitions, runs, plans and the audit log: any role will do."""


@dataclass(frozen=True)
class Rights:
    """A principal's effective roles, and the idsync user it acts as (if any)."""

    roles: frozenset[Role]
    user: UserRow | None = None
    bootstrap: bool = False

    def has(self, role: Role) -> bool:
        return role in self.roles


def rights(ws: Workspace) -> Rights:
    """The effective roles of the workspace's principal, read from the database."""
    if ws.principal.kind == "system":
        return Rights(SYSTEM_ROLES)
    with ws.db.session() as session:
        return rights_in(session, ws.principal)


def rights_in(session: Session, principal: Principal) -> Rights:
    """The effective roles of *principal*, read through *session*.

    A directory user's roles granted through a group are those resolved at
    its last sign-in (stored with the direct grants), so no directory is
    asked here.
    """
    if principal.kind == "system":
        return Rights(SYSTEM_ROLES)
    repo = UserRepository(session)
    user = repo.by_os_user(principal.name) if principal.kind == "os-user" else repo.by_name(principal.name)
    if user is None:
        if repo.count() == 0:
            return Rights(SYSTEM_ROLES, bootstrap=True)
        return Rights(frozenset())
    if user.disabled:
        return Rights(frozenset(), user)
    return Rights(effective(repo.roles(user.id)), user)


def require(ws: Workspace, role: Role, action: str) -> Rights:
    """*ws*'s rights, when its principal holds *role*; else the permission
    error naming the role needed to *action* (``"run collections"``)."""
    found = rights(ws)
    if role in found.roles:
        return found
    raise PermissionDeniedError(_refusal(ws.principal, found, role, action), hint=_hint(ws.principal, found))


def require_any(ws: Workspace, roles: tuple[Role, ...], action: str) -> Rights:
    """As :func:`require`, when the principal holds any of *roles*."""
    found = rights(ws)
    if any(role in found.roles for role in roles):
        return found
    needed = " or ".join(roles) if len(roles) < len(ROLES) else f"any of the roles {', '.join(ROLES)}"
    raise PermissionDeniedError(_refusal(ws.principal, found, needed, action), hint=_hint(ws.principal, found))


def require_reader(ws: Workspace, what: str) -> Rights:
    """*ws*'s rights, when its principal holds any role at all: what reading
    *what* (``"runs"``) needs."""
    return require_any(ws, ANY_ROLE, f"read {what}")


def require_self_or(ws: Workspace, user_name: str, role: Role, action: str) -> Rights:
    """*ws*'s rights, when its principal is the enabled user *user_name* itself
    or holds *role*: what managing one's own password or tokens needs."""
    found = rights(ws)
    if found.user is not None and not found.user.disabled and found.user.name == user_name:
        return found
    if role in found.roles:
        return found
    raise PermissionDeniedError(_refusal(ws.principal, found, role, action), hint=_hint(ws.principal, found))


def require_on_database(database: Database, principal: Principal, role: Role, action: str) -> None:
    """As :func:`require`, on a database that may predate users (its schema
    not yet upgraded): with no ``users`` table, whoever opens it is the
    bootstrap administrator, as before users existed."""
    if principal.kind == "system" or not inspect(database.engine).has_table("users"):
        return
    with database.session() as session:
        found = rights_in(session, principal)
    if role not in found.roles:
        raise PermissionDeniedError(_refusal(principal, found, role, action), hint=_hint(principal, found))


def _refusal(principal: Principal, found: Rights, role: str, action: str) -> str:
    who = _who(principal, found)
    held = ", ".join(sorted(found.roles)) if found.roles else "no role"
    needed = role if role.startswith("any ") else f"the role {role}"
    return f"{who} may not {action}: that needs {needed} ({who} has {held})"


def _who(principal: Principal, found: Rights) -> str:
    if found.user is not None:
        return f"user {found.user.name!r}" + (" (disabled)" if found.user.disabled else "")
    if principal.kind == "os-user":
        return f"account {principal.name!r}"
    return f"{principal.name!r}"


def _hint(principal: Principal, found: Rights) -> str:
    if found.user is None and principal.kind == "os-user":
        return "this operating-system account is not mapped to an idsync user: ask an administrator to map it and grant a role"
    return "ask an administrator to grant the role"
