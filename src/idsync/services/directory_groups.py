"""Members of a directory group: who holds a role, or may approve, by group membership.

A workflow's ``approver_group`` and a role granted to a group (``role_groups``)
both name a group entry in an identity store; its direct members
(``member`` of ``groupOfNames`` and Active Directory groups, ``uniqueMember``
of ``groupOfUniqueNames``) are the people meant. Nested groups are not
followed: a group's members are the DNs it lists.
"""

from __future__ import annotations

from idsync.domain.dn import normalize_dn
from idsync.domain.entry import Scope
from idsync.errors import NotFoundError
from idsync.services import authz, connections
from idsync.services.workspace import Workspace

MEMBER_ATTRIBUTES = ("member", "uniqueMember")


def member_dns(ws: Workspace, store: str, group_dn: str) -> frozenset[str]:
    """The normalised DNs group *group_dn* of identity store *store* lists as
    members; NotFoundError when there is no such entry."""
    authz.require_reader(ws, "directory groups")
    with connections.directory(ws, store) as directory:
        found = list(directory.search(group_dn, Scope.BASE, "(objectClass=*)", list(MEMBER_ATTRIBUTES)))
    if not found:
        raise NotFoundError(f"group {group_dn!r} was not found in identity store {store!r}", field="group")
    members: set[str] = set()
    for attribute in MEMBER_ATTRIBUTES:
        for value in found[0].attrs.get_values(attribute):
            members.add(normalize_dn(value))
    return frozenset(members)
