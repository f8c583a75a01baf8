"""A planned or applied change, in the words a notification lists it.

Pure: a :class:`~idsync.domain.changes.Change` in, a
:class:`~idsync.notify.events.ChangedObject` out. Values are shortened so
one object stays one short paragraph, and password attributes are never
shown, only said to be set.
"""

from __future__ import annotations

from idsync.domain.changes import MEMBER_ATTRIBUTES, Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Values
from idsync.notify.events import ChangedObject

VALUE_WIDTH = 60
"""Longest value shown; longer ones are cut with an ellipsis."""

VALUES_SHOWN = 3
"""Values shown per attribute; the rest are counted."""

_SECRET_HINTS = ("password", "pwd")


def _secret(attribute: str) -> bool:
    lowered = attribute.lower()
    return any(hint in lowered for hint in _SECRET_HINTS)


def _short(value: str) -> str:
    return value if len(value) <= VALUE_WIDTH else value[: VALUE_WIDTH - 1] + "…"


def _values(values: Values, sign: str = "") -> str:
    if not values:
        return "(none)"
    shown = [sign + _short(v) for v in values[:VALUES_SHOWN]]
    if len(values) > VALUES_SHOWN:
        shown.append(f"and {len(values) - VALUES_SHOWN} more")
    return ", ".join(shown)


def _modification(mod: Modification) -> str:
    name = mod.attribute
    if _secret(name):
        return f"{name}: changed" if mod.values or mod.op is not ModOp.DELETE else f"{name}: removed"
    if mod.op is ModOp.ADD:
        return f"{name}: {_values(mod.values, '+')}"
    if mod.op is ModOp.DELETE:
        return f"{name}: {_values(mod.values, '-')}" if mod.values else f"{name}: removed"
    if not mod.values:
        return f"{name}: {_values(mod.before)} -> removed"
    if not mod.before:
        return f"{name}: {_values(mod.values)}"
    return f"{name}: {_values(mod.before)} -> {_values(mod.values)}"


def is_membership(change: Change) -> bool:
    """An update that changes group member attributes only."""
    return (
        change.op is ChangeOp.UPDATE
        and bool(change.mods)
        and all(m.attribute.lower() in MEMBER_ATTRIBUTES for m in change.mods)
    )


def describe(job: str, change: Change) -> ChangedObject:
    """*change* of job *job*, with one line per attribute it sets or changes."""
    if change.op is ChangeOp.CREATE and change.attrs is not None:
        lines = tuple(
            f"{name}: set" if _secret(name) else f"{name}: {_values(values)}"
            for name, values in change.attrs.items()
            if name.lower() != "objectclass"
        )
    else:
        lines = tuple(_modification(mod) for mod in change.mods)
    return ChangedObject(
        job=job,
        op=change.op.value,
        dn=change.dn,
        new_dn=change.new_dn,
        attributes=lines,
        membership=is_membership(change),
    )
