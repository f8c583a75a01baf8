"""Signing in with a name and password: a local user's argon2 hash, or a bind to the user's directory.

A directory user (source ``directory``) signs in by a simple bind to its
identity store's LDAP server as its DN; idsync keeps no password for it. At
each sign-in, the roles it holds through directory groups (``role_groups``:
members of group G in store S hold role R) are read from the directory and
stored with its grants, marked ``group <dn>``; roles of groups it has left
are taken away. Deciding its rights later (``authz.rights``) then needs no
round trip to the directory. Sign-in itself needs no role: it is how a
front end finds who acts.

An unknown user and a wrong password get the same answer, after the same
work, so a refusal does not tell which names exist.
"""

from __future__ import annotations

import logging

from idsync.connectors.ldap import check_bind
from idsync.domain.dn import normalize_dn
from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.errors import AuthError, ConfigError, NotFoundError, quoted
from idsync.services import definitions, directory_groups, users
from idsync.services.workspace import Workspace
from idsync.store import audit
from idsync.store.users_repo import UserRepository, UserRow

log = logging.getLogger(__name__)

REFUSED = "sign-in refused: wrong user name or password"
SIGN_IN = Principal.system("sign-in")
"""Who reads the user's identity store and its groups while it signs in."""


def authenticate(ws: Workspace, name: str, password: str) -> Principal:
    """The idsync user *name*, once *password* is its own; AuthError otherwise
    (one message whether the user exists or not)."""
    ws = ws.acting_as(SIGN_IN)  # whoever asks, nobody has signed in yet
    with ws.db.session() as session:
        user = UserRepository(session).by_name(name)
        if user is None or user.source == "local":
            accepted = users.check_password(session, user, password)
            session.commit()  # a rehash, if any
    if user is None:
        raise AuthError(REFUSED)
    if user.source != "local":
        accepted = _bind(ws, user, password)
    if not accepted:
        raise AuthError(REFUSED)
    if user.disabled:
        raise AuthError(f"user {quoted(name)} is disabled")
    if user.source != "local":
        refresh_group_roles(ws, user)
    return Principal(user.name, "user")


def _bind(ws: Workspace, user: UserRow, password: str) -> bool:
    if not user.store_name or not user.dn:
        return False
    loaded = definitions.load(ws, "store", user.store_name)
    if loaded.definition.kind != "ldap":
        raise ConfigError(f"store {quoted(user.store_name)} of user {quoted(user.name)} is not an LDAP server")
    # The user's own DN and password: the store's bind credentials play no part.
    return check_bind(loaded.definition, user.dn, password)


def refresh_group_roles(ws: Workspace, user: UserRow) -> tuple[set[Role], set[Role]]:
    """Store the roles *user* holds through the groups of its identity store
    that list its DN (replacing those of its last sign-in); the roles added
    and removed. A mapped group that no longer exists grants nothing."""
    if user.dn is None or user.store_name is None:
        return set(), set()
    me = normalize_dn(user.dn)
    with ws.db.session() as session:
        groups = UserRepository(session).role_groups(user.store_name)
    held: dict[Role, str] = {}
    members_of: dict[str, frozenset[str]] = {}
    for group in groups:
        if group.group_dn not in members_of:
            try:
                members_of[group.group_dn] = directory_groups.member_dns(ws, user.store_name, group.group_dn)
            except NotFoundError:
                log.warning("store %r: group %r, mapped to a role, does not exist", user.store_name, group.group_dn)
                members_of[group.group_dn] = frozenset()
        if me in members_of[group.group_dn]:
            held.setdefault(group.role, group.group_dn)
    with ws.db.session() as session:
        repo = UserRepository(session)
        added, removed = repo.set_group_grants(user.id, held)
        if added or removed:
            audit.record(session, actor=user.name, action="user.group_roles", object_kind="user",
                         object_name=user.name, detail={
                             "added": sorted(r.value for r in added), "removed": sorted(r.value for r in removed),
                         })
        session.commit()
    return added, removed
