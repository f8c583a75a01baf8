"""Changes: what a plan does to one directory entry.

A plan is an ordered list of :class:`Change`. Each change carries, besides
what to write, the values the planner saw (``before``) for every attribute it
touches: applying a stored plan later compares them with the directory and
leaves objects that changed in between untouched (a conflict).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from idsync.domain.entry import Attrs, Values


class ChangeOp(enum.StrEnum):
    """The operation of a change, as shown in plans and counted in results."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    DISABLE = "disable"
    MOVE = "move"


class ModOp(enum.StrEnum):
    """LDAP modification kinds."""

    ADD = "add"
    DELETE = "delete"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class Modification:
    """One attribute modification.

    ``values`` are added, deleted, or replace all values (an empty replace or
    an empty delete removes the attribute). ``before`` are the values the
    planner saw, for the plan's diff and the apply-time precondition.
    """

    op: ModOp
    attribute: str
    values: Values
    before: Values = ()

    def after(self) -> Values:
        """The attribute's values once this modification is applied to ``before``."""
        if self.op is ModOp.REPLACE:
            return self.values
        if self.op is ModOp.ADD:
            return self.before + tuple(v for v in self.values if v not in self.before)
        if not self.values:
            return ()
        return tuple(v for v in self.before if v not in self.values)


@dataclass(frozen=True, slots=True)
class Change:
    """One operation on one entry.

    - ``CREATE``: add ``dn`` with ``attrs``.
    - ``UPDATE`` / ``DISABLE``: modify ``dn`` with ``mods``.
    - ``DELETE``: delete ``dn``.
    - ``MOVE``: rename ``dn`` to ``new_dn`` (``mods`` may follow on the new DN).

    ``key`` is the match key of the record or entry (for reports);
    ``anchor`` the entry's immutable id when known. ``delete_old_rdn``
    (moves only) False keeps the old RDN's values in the entry, as an LDIF
    ``deleteoldrdn: 0`` asks; plans always delete them.
    """

    op: ChangeOp
    dn: str
    key: str = ""
    attrs: Attrs | None = None
    mods: tuple[Modification, ...] = ()
    new_dn: str | None = None
    anchor: str | None = None
    delete_old_rdn: bool = True


MEMBER_ATTRIBUTES = frozenset({"member", "uniquemember", "memberuid"})


def precondition(change: Change) -> dict[str, Values]:
    """Attribute → values the planner saw, for every attribute the change touches."""
    return {m.attribute: m.before for m in change.mods}


@dataclass(frozen=True)
class ChangeFilter:
    """Which changes of a plan a reader wants to see: one kind, those that
    touch one attribute, those whose DN or values contain some text (each
    without regard to case). The empty filter keeps every change."""

    op: ChangeOp | None = None
    attribute: str | None = None
    text: str | None = None

    def keeps(self, change: Change) -> bool:
        if self.op is not None and change.op is not self.op:
            return False
        if self.attribute and not _touches(change, self.attribute.lower()):
            return False
        return not self.text or _contains(change, self.text.lower())


def _touches(change: Change, attribute: str) -> bool:
    if change.attrs is not None and attribute in (name.lower() for name in change.attrs):
        return True
    return any(mod.attribute.lower() == attribute for mod in change.mods)


def _contains(change: Change, text: str) -> bool:
    if text in change.dn.lower() or (change.new_dn and text in change.new_dn.lower()) or text in change.key.lower():
        return True
    if change.attrs is not None and any(text in v.lower() for vs in change.attrs.values() for v in vs):
        return True
    return any(text in v.lower() for mod in change.mods for v in (*mod.values, *mod.before))
