"""Changes as plain JSON, for stored plans and their exports.

A stored plan must come back exactly as it was computed, ``before`` values
included: applying an approved plan checks them against the directory. The
format is small and stable (keys that hold their default are left out,
since plans can hold hundreds of thousands of changes)::

    {"op": "update", "dn": "uid=ann,ou=people,dc=example,dc=org", "key": "ann",
     "mods": [{"op": "replace", "attribute": "mail",
               "values": ["ann@example.org"], "before": ["a@example.org"]}]}

Attribute names keep their spelling and order; values keep their order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs
from idsync.errors import ConfigError


def attrs_to_json(attrs: Attrs) -> dict[str, list[str]]:
    return attrs.to_dict()


def attrs_from_json(data: Mapping[str, Sequence[str]]) -> Attrs:
    return Attrs({name: tuple(values) for name, values in data.items()})


def modification_to_json(mod: Modification) -> dict[str, Any]:
    data: dict[str, Any] = {"op": mod.op.value, "attribute": mod.attribute, "values": list(mod.values)}
    if mod.before:
        data["before"] = list(mod.before)
    return data


def modification_from_json(data: Mapping[str, Any]) -> Modification:
    return Modification(
        op=ModOp(data["op"]),
        attribute=data["attribute"],
        values=tuple(data.get("values", ())),
        before=tuple(data.get("before", ())),
    )


def change_body_to_json(change: Change) -> dict[str, Any]:
    """The parts of a change that have no column of their own in ``plan_changes``."""
    data: dict[str, Any] = {}
    if change.attrs is not None:
        data["attrs"] = attrs_to_json(change.attrs)
    if change.mods:
        data["mods"] = [modification_to_json(m) for m in change.mods]
    return data


def change_to_json(change: Change) -> dict[str, Any]:
    """Every field of *change* as JSON-ready data; :func:`change_from_json` reverses it."""
    data: dict[str, Any] = {"op": change.op.value, "dn": change.dn}
    if change.key:
        data["key"] = change.key
    data.update(change_body_to_json(change))
    if change.new_dn is not None:
        data["new_dn"] = change.new_dn
    if change.anchor is not None:
        data["anchor"] = change.anchor
    return data


def change_from_json(data: Mapping[str, Any]) -> Change:
    """The change stored as *data*; a malformed document is a ConfigError naming the field."""
    try:
        attrs = data.get("attrs")
        return Change(
            op=ChangeOp(data["op"]),
            dn=str(data["dn"]),
            key=str(data.get("key") or ""),
            attrs=attrs_from_json(attrs) if attrs is not None else None,
            mods=tuple(modification_from_json(m) for m in data.get("mods", ())),
            new_dn=data.get("new_dn"),
            anchor=data.get("anchor"),
        )
    except KeyError as exc:
        raise ConfigError(f"stored change lacks the field {exc.args[0]!r}: {dict(data)!r:.200}") from exc
    except ValueError as exc:
        raise ConfigError(f"stored change is not valid ({exc}): {dict(data)!r:.200}") from exc
