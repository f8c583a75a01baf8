"""Who may decide a request, and which changes its approvals let through [S7.1, S7.2].

Eligibility is worked out from values the services read: the workflow's
routing (named users, the members of its directory group, and once
escalated the escalation's), the users idsync knows, and the users the
request was re-routed to. A disabled user, or one without the approver
role, is never eligible; nor is the requester, whatever the settings say,
so nobody approves their own request.

A partial approval approves some kinds of change, or leaves out listed
objects, or single members of a group (``GROUP_DN;MEMBER_DN``: a change of
that group's membership is applied without that member's value). With
several approvals, only what every approval of the current
round let through is applied (:func:`intersect`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property

from idsync.domain.changes import Change, ChangeOp
from idsync.domain.dn import normalize_dn
from idsync.errors import ConfigError
from idsync.workflow.requests import Decision


@dataclass(frozen=True)
class Person:
    """An idsync user as eligibility sees it: name, normalised DN (directory
    users), disabled or not, and whether the approver role is granted."""

    name: str
    dn: str | None = None
    disabled: bool = False
    approver: bool = False


@dataclass(frozen=True)
class Routing:
    """To whom a request goes: *named* users and the (normalised) DNs of
    *group_members*; once escalated, also the escalation's."""

    named: frozenset[str] = frozenset()
    group_members: frozenset[str] = frozenset()
    escalation_named: frozenset[str] = frozenset()
    escalation_group_members: frozenset[str] = frozenset()

    def union(self, other: Routing) -> Routing:
        """Both routings at once (a collection writing to several stores with workflows)."""
        return Routing(
            self.named | other.named,
            self.group_members | other.group_members,
            self.escalation_named | other.escalation_named,
            self.escalation_group_members | other.escalation_group_members,
        )


def eligible(
    routing: Routing,
    people: Iterable[Person],
    *,
    requester: str,
    rerouted_to: frozenset[str] = frozenset(),
    escalation_step: int = 0,
) -> frozenset[str]:
    """The names of the users who may approve, deny or re-route the request now."""
    named = routing.named | rerouted_to
    members = routing.group_members
    if escalation_step > 0:
        named |= routing.escalation_named
        members |= routing.escalation_group_members
    found: set[str] = set()
    for person in people:
        if person.disabled or not person.approver or person.name == requester:
            continue
        if person.name in named or (person.dn is not None and person.dn in members):
            found.add(person.name)
    return frozenset(found)


@dataclass(frozen=True)
class ChangeFilter:
    """Which changes of the approved plans are applied: those of *kinds* (None:
    every kind) whose DN (and new DN, for a move) is not in *excluded*
    (normalised DNs)."""

    kinds: frozenset[ChangeOp] | None = None
    excluded: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        """Whether the filter lets every change through."""
        return self.kinds is None and not self.excluded

    def allows(self, change: Change) -> bool:
        if self.kinds is not None and change.op not in self.kinds:
            return False
        if not self.excluded:
            return True
        if normalize_dn(change.dn) in self.excluded:
            return False
        return change.new_dn is None or normalize_dn(change.new_dn) not in self.excluded

    @cached_property
    def left_out_members(self) -> Mapping[str, frozenset[str]]:
        """The members left out, by group (normalised DNs): the ``GROUP;MEMBER`` exclusions."""
        found: dict[str, set[str]] = {}
        for item in self.excluded:
            group, member = split_exclusion(item)
            if member is not None:
                found.setdefault(group, set()).add(member)
        return {group: frozenset(members) for group, members in found.items()}

    def narrow(self, change: Change) -> Change | None:
        """*change* as the approvals let it through: None when it is left out
        whole; else without the values of the members left out of its group
        (None when no value is left to write)."""
        if not self.allows(change):
            return None
        left_out = self.left_out_members.get(normalize_dn(change.dn)) if self.left_out_members else None
        if not left_out:
            return change
        mods = []
        for mod in change.mods:
            if not mod.values:
                mods.append(mod)  # removes the attribute: not a member's value
                continue
            values = tuple(v for v in mod.values if _normal_or_same(v) not in left_out)
            if values:
                mods.append(replace(mod, values=values))
        return replace(change, mods=tuple(mods)) if mods else None

    def describe(self) -> str:
        """In words, for a log line: ``only create, update; 2 object(s) excluded; 1 member(s) excluded``."""
        parts = []
        if self.kinds is not None:
            parts.append("only " + (", ".join(sorted(k.value for k in self.kinds)) or "nothing"))
        members = sum(len(m) for m in self.left_out_members.values())
        if len(self.excluded) > members:
            parts.append(f"{len(self.excluded) - members} object(s) excluded")
        if members:
            parts.append(f"{members} member(s) excluded")
        return "; ".join(parts) or "every change"


MEMBER_SEPARATOR = ";"
"""Between a group's DN and a member's DN in an exclusion: a ``;`` is escaped within a DN."""


def split_exclusion(text: str) -> tuple[str, str | None]:
    """An exclusion's DN, and the member's DN when it names a group's member
    (``GROUP;MEMBER``): split at the first ``;`` not escaped by a backslash."""
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == MEMBER_SEPARATOR:
            return text[:index], text[index + 1 :]
    return text, None


def normalized_exclusion(text: str) -> str:
    """An exclusion (a DN, or ``GROUP;MEMBER``) in the form :class:`ChangeFilter`
    compares; ConfigError when a DN in it does not parse."""
    group, member = split_exclusion(text)
    if member is None:
        return normalize_dn(group)
    if not group.strip() or not member.strip():
        raise ConfigError("a member's exclusion is GROUP_DN;MEMBER_DN, both DNs given")
    return f"{normalize_dn(group)}{MEMBER_SEPARATOR}{normalize_dn(member)}"


def _normal_or_same(value: str) -> str:
    try:
        return normalize_dn(value)
    except ConfigError:
        return value


def approval_filter(decision: Decision) -> ChangeFilter:
    """What one approval let through."""
    return ChangeFilter(decision.kinds, decision.excluded)


def intersect(approvals: Iterable[Decision]) -> ChangeFilter:
    """What every approval in *approvals* let through: the kinds all of them
    approved, minus every object any of them excluded."""
    kinds: frozenset[ChangeOp] | None = None
    excluded: frozenset[str] = frozenset()
    for decision in approvals:
        if decision.kinds is not None:
            kinds = decision.kinds if kinds is None else kinds & decision.kinds
        excluded |= decision.excluded
    return ChangeFilter(kinds, excluded)


def normalized_exclusions(dns: Iterable[str]) -> frozenset[str]:
    """DNs (or ``GROUP;MEMBER`` pairs) an approver left out, in the form
    :class:`ChangeFilter` compares; one that cannot be parsed raises ConfigError."""
    return frozenset(normalized_exclusion(dn) for dn in dns)
