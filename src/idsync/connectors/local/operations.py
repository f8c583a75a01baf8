"""What add, modify and rename do to an entry's attributes, with LDAP semantics.

Pure functions over an :data:`AttrMap` (canonical attribute name -> values):
they return the new attributes or raise :class:`LdapFailure` exactly where
slapd refuses (a value added twice, a value deleted that is not there…).
Values are compared with each attribute's equality rule, so ``JDoe`` and
``jdoe`` are the same ``uid``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache

from idsync.connectors.local.schema import Schema
from idsync.connectors.local.validate import (
    AttrMap,
    LdapFailure,
    check_values,
    keys_of,
    resolve,
    syntax_of,
)
from idsync.domain.changes import Modification, ModOp
from idsync.domain.dn import RDN
from idsync.domain.entry import Attrs, Values
from idsync.domain.filters import value_key

# First RDN attribute of a suffix -> the object classes of the suffix entry.
_SUFFIX_CLASSES = {
    "dc": ("top", "dcObject", "organization"),
    "o": ("top", "organization"),
    "ou": ("top", "organizationalUnit"),
    "c": ("top", "country"),
    "l": ("top", "locality"),
    "st": ("top", "locality"),
    "cn": ("top", "organizationalRole"),
    "uid": ("top", "account"),
}


def _add_rdn_values(schema: Schema, attrs: AttrMap, rdn: RDN) -> None:
    for type_, value in rdn:
        info = resolve(schema, type_)
        current = attrs.setdefault(info.name, [])
        if value in current:  # written as the DN spells it: the usual case
            continue
        wanted = value_key(info.equality, value)
        if wanted not in keys_of(info, current):
            current.extend(check_values(info, [value]))


def entry_for_add(schema: Schema, rdn: RDN, attrs: Mapping[str, Sequence[str]] | None) -> AttrMap:
    """The attributes of a new entry: names resolved to the schema's spelling,
    values checked, and the RDN values added when missing (as slapd does)."""
    if isinstance(attrs, Attrs):  # what idsync's own writes give: try the names' plan
        given = tuple(attrs.pairs())
        plan = _plan(schema, tuple(name for name, _ in given))
        if plan is not None:
            return _planned(schema, rdn, given, plan)
    out: AttrMap = {}
    pairs = attrs.pairs() if isinstance(attrs, Attrs) else (attrs or {}).items()
    for name, values in pairs:
        info = resolve(schema, name)
        if not values:
            continue
        prior = out.get(info.name)
        out[info.name] = check_values(info, values if prior is None else [*prior, *values])
    _add_rdn_values(schema, out, rdn)
    return out


_Plan = tuple[tuple[str, Callable[[str], bool]], ...]


@lru_cache(maxsize=1024)
def _plan(schema: Schema, names: tuple[str, ...]) -> _Plan | None:
    """For the attribute names of a new entry (the same few lists on every
    entry a job writes): each one's schema name and syntax check; None when
    one is refused or two are the same attribute (the general way says so)."""
    try:
        infos = [resolve(schema, name) for name in names]
    except LdapFailure:
        return None
    if len({info.name for info in infos}) < len(infos):
        return None
    return tuple((info.name, syntax_of(info)) for info in infos)


def _planned(schema: Schema, rdn: RDN, given: tuple[tuple[str, Values], ...], plan: _Plan) -> AttrMap:
    """:func:`entry_for_add` by the *plan* of the given names: the same checks, in the same order."""
    out: AttrMap = {}
    for (_name, values), (canonical, valid) in zip(given, plan, strict=True):
        if len(values) == 1:
            value = values[0]
            if not isinstance(value, str) or not valid(value):
                raise LdapFailure("invalidAttributeSyntax", f"{canonical}: value #0 invalid per syntax", canonical)
            out[canonical] = [value]
        elif values:
            out[canonical] = check_values(resolve(schema, canonical), values)
    _add_rdn_values(schema, out, rdn)
    return out


def suffix_entry(schema: Schema, rdn: RDN) -> AttrMap:
    """The attributes of the suffix entry created with a new directory."""
    first = rdn[0][0].lower()
    classes = _SUFFIX_CLASSES.get(first, ("top", "organizationalUnit", "extensibleObject"))
    attrs: dict[str, list[str]] = {"objectClass": list(classes)}
    if first == "dc":
        attrs["o"] = [rdn[0][1]]
    elif first not in _SUFFIX_CLASSES:
        attrs["ou"] = [rdn[0][1]]
    return entry_for_add(schema, rdn, attrs)


def apply_mods(schema: Schema, attrs: AttrMap, mods: Iterable[Modification]) -> AttrMap:
    """*attrs* after the modifications, applied in order (RFC 4511 section 4.6)."""
    out = {name: list(values) for name, values in attrs.items()}
    for mod in mods:
        info = resolve(schema, mod.attribute)
        values = check_values(info, mod.values)
        name = info.name
        current = out.get(name, [])
        if mod.op is ModOp.ADD:
            present = set(keys_of(info, current))
            for i, key in enumerate(keys_of(info, values)):
                if key in present:
                    raise LdapFailure("typeOrValueExists", f"modify/add: {name}: value #{i} already exists", name)
            if values:
                out[name] = current + values
        elif mod.op is ModOp.DELETE:
            if values and info.equality is None:  # as slapd: checked before the values are looked for
                raise LdapFailure(
                    "inappropriateMatching", f"modify/delete: {name}: no equality matching rule", name
                )
            if name not in out:
                raise LdapFailure("noSuchAttribute", f"modify/delete: {name}: no such attribute", name)
            if not values:
                del out[name]
                continue
            doomed = set(keys_of(info, values))
            if not doomed <= set(keys_of(info, current)):
                raise LdapFailure("noSuchAttribute", f"modify/delete: {name}: no such value", name)
            kept = [v for v, k in zip(current, keys_of(info, current), strict=True) if k not in doomed]
            if kept:
                out[name] = kept
            else:
                del out[name]
        elif values:
            out[name] = values
        else:
            out.pop(name, None)
    return out


def rename_attrs(schema: Schema, attrs: AttrMap, old_rdn: RDN, new_rdn: RDN, delete_old: bool = True) -> AttrMap:
    """*attrs* after a rename that deletes the old RDN values (``deleteoldrdn``),
    or keeps them (*delete_old* False).

    As in slapd, the old values go first and the new RDN's values are then
    added as written, so renaming ``uid=jdoe`` to ``uid=JDoe`` respells the value.
    """
    out = {name: list(values) for name, values in attrs.items()}
    for type_, value in old_rdn if delete_old else ():
        info = schema.attribute(type_)
        if info is None or info.name not in out:
            continue
        key = value_key(info.equality, value)
        kept = [v for v, k in zip(out[info.name], keys_of(info, out[info.name]), strict=True) if k != key]
        if kept:
            out[info.name] = kept
        else:
            del out[info.name]
    _add_rdn_values(schema, out, new_rdn)
    return out
