"""The roles a principal can hold, and what each lets it do [S9.4].

Roles are separate grants, never a ladder: an admin is not an approver unless
granted that role too, so whoever configures a workflow does not, by that
alone, decide its requests.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """``admin``: everything but deciding requests; ``operator``: create, edit
    and run stores, sources, jobs, collections and schedules; ``approver``:
    decide the requests routed to them; ``auditor``: read everything."""

    ADMIN = "admin"
    OPERATOR = "operator"
    APPROVER = "approver"
    AUDITOR = "auditor"


ROLES: tuple[Role, ...] = tuple(Role)

IMPLIED: dict[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset({Role.ADMIN, Role.OPERATOR, Role.AUDITOR}),
    Role.OPERATOR: frozenset({Role.OPERATOR}),
    Role.APPROVER: frozenset({Role.APPROVER}),
    Role.AUDITOR: frozenset({Role.AUDITOR}),
}
"""What each granted role lets a principal act as: an admin may do what an
operator or an auditor may, never what only an approver may."""


def effective(granted: frozenset[Role] | set[Role]) -> frozenset[Role]:
    """The roles *granted* let a principal act as (see :data:`IMPLIED`)."""
    result: set[Role] = set()
    for role in granted:
        result |= IMPLIED[role]
    return frozenset(result)


def parse_role(text: str) -> Role:
    """A role from its name, case-insensitively; ValueError naming the choices."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise ValueError(f"{text!r} is not a role; the roles are {', '.join(ROLES)}") from None
