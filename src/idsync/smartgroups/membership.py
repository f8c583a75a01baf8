"""Membership as set arithmetic over normalised DNs, and the limits that hold an update.

``target = (queries ∪ join ∪ include) − exclude``. DNs are compared in their
normalised form (:func:`idsync.domain.dn.normalize_dn`); each keeps the
spelling it came with, so values are written as the directory returned
them and removed as the group holds them (a modify deleting a value names
it as stored).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from idsync.domain.dn import normalize_dn
from idsync.errors import ConfigError

Members = dict[str, str]
"""Normalised DN -> the DN as spelled where it was found."""


_UNPLAIN = re.compile(r"[^ !$-*,-:=?-\[\]-~]")
"""A character that a DN's normal form may spell otherwise: anything but
printable ASCII, and the characters that escape, quote or join values."""
_CACHE_LIMIT = 1 << 18
_keys: dict[str, str] = {}
"""The normal form of the DNs seen lately, by spelling: a group's members and
the queries' answers name the same entries, spelled alike."""


@lru_cache(maxsize=1024)
def _plain(first_type: str, parent: str) -> bool:
    """Whether a lower-cased DN of this first attribute type and this parent
    (already lower-cased) is its own normal form, its first value being plain."""
    skeleton = f"{first_type}=x,{parent}" if parent else f"{first_type}=x"
    try:
        return normalize_dn(skeleton) == skeleton
    except ConfigError:
        return False


def member_key(dn: str) -> str:
    """:func:`idsync.domain.dn.normalize_dn` of *dn*, fast for the DNs directories
    return (plain ASCII, nothing escaped, no space around separators): an
    update compares hundreds of thousands of them. ConfigError when *dn* is not a DN."""
    key = _keys.get(dn)
    if key is not None:
        return key
    key = None
    if (
        dn.isascii() and not _UNPLAIN.search(dn) and dn[:1] != " " and dn[-1:] != " "
        and "  " not in dn and " ," not in dn and ", " not in dn and " =" not in dn and "= " not in dn
    ):
        low = dn.lower()
        head, _comma, parent = low.partition(",")
        first_type, equals, _value = head.partition("=")
        if equals and _plain(first_type, parent):
            key = low
    if key is None:
        key = normalize_dn(dn)
    if len(_keys) >= _CACHE_LIMIT:
        _keys.clear()
    _keys[dn] = key
    return key


def members_of(dns: Iterable[str]) -> Members:
    """*dns* keyed by their normalised form (the first spelling of each is kept).
    A value that is not a DN (a broken member value) is kept under itself."""
    out: Members = {}
    for dn in dns:
        try:
            key = member_key(dn)
        except ConfigError:
            key = dn
        out.setdefault(key, dn)
    return out


def target_members(
    queried: Iterable[Mapping[str, str]],
    joined: Mapping[str, str] | None,
    include: Iterable[str],
    exclude: Iterable[str],
) -> Members:
    """``(queries ∪ join ∪ include) − exclude``: exclude wins over everything,
    include over the queries (an included DN is a member whatever the queries say)."""
    out: Members = {}
    for found in queried:
        out.update(found)
    if joined:
        out.update(joined)
    out.update(members_of(include))
    for key in members_of(exclude):
        out.pop(key, None)
    return out


@dataclass(frozen=True)
class Difference:
    """What writing *target* over *current* takes: values to add and to delete."""

    current: int
    target: int
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.add) + len(self.remove)


def difference(current: Mapping[str, str], target: Mapping[str, str]) -> Difference:
    """The members to add (as *target* spells them) and to remove (as *current*
    spells them), each sorted by normalised DN so the result is stable."""
    add = [target[k] for k in sorted(target.keys() - current.keys())]
    remove = [current[k] for k in sorted(current.keys() - target.keys())]
    return Difference(len(current), len(target), add, remove)


def difference_of_values(values: Sequence[str], target: Mapping[str, str]) -> Difference:
    """:func:`difference` of a group's member *values* (as its entry spells
    them) and *target*, normalising only the values not spelled as in
    *target*: after an update the two are spelled alike, so a group that
    barely changed costs set operations on strings, not a DN parse per member."""
    present = set(values)
    spelled = set(target.values())
    common = present & spelled
    others: dict[str, str] = {}
    for value in values:
        if value not in spelled:
            try:
                key = member_key(value)
            except ConfigError:
                key = value
            others.setdefault(key, value)
    current = len(common) + sum(1 for key in others if target.get(key) not in common)
    add = [target[k] for k in sorted(k for k, v in target.items() if v not in present and k not in others)]
    remove = [others[k] for k in sorted(k for k in others if k not in target)]
    return Difference(current, len(target), add, remove)


@dataclass(frozen=True)
class Limits:
    """A group's limits: see :class:`idsync.domain.smartgroups.SmartGroup`."""

    allow_empty: bool = False
    max_members: int | None = None
    guard_percent: float | None = None
    guard_min_size: int = 0


HOLDING_LIMITS = frozenset({"max_members", "guard"})
"""The limits whose refusal can become a request holding the membership plan
(an empty result is a rule's mistake to fix, not a change to approve)."""


def refusal(diff: Difference, limits: Limits) -> str | None:
    """Why this update must not be applied (the group is left as it is), or None."""
    found = refused_by(diff, limits)
    return found[1] if found is not None else None


def refused_by(diff: Difference, limits: Limits) -> tuple[str, str] | None:
    """The limit that refuses this update (``allow_empty``, ``max_members`` or
    ``guard``) and why, or None."""
    if not diff.changed:
        return None
    if diff.target == 0 and not limits.allow_empty:
        return "allow_empty", (
            f"the result is empty: the update would remove all {diff.current} member(s) (allow_empty is off)"
        )
    if limits.max_members is not None and diff.target > limits.max_members:
        return "max_members", (
            f"the result has {diff.target} members, over the maximum of {limits.max_members} (max_members)"
        )
    if limits.guard_percent is not None and diff.current > limits.guard_min_size:
        share = diff.changed * 100 / diff.current
        if share > limits.guard_percent:
            return "guard", (
                f"the update changes {diff.changed} of {diff.current} members ({share:.1f} %), over the guard of "
                f"{limits.guard_percent:g} % for groups larger than {limits.guard_min_size}"
            )
    return None
