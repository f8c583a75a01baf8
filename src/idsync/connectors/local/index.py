"""Attribute indexes of the embedded directory: which rows an entry has, which rows a filter may use.

An index row is (attribute, value key, entry id): the lower-cased canonical
name of an indexed attribute, one of the entry's values prepared by the
attribute's equality rule (so ``JDoe`` and ``jdoe`` share a row), and the
entry. ``objectClass`` rows hold the entry's classes with their superiors,
as ``(objectClass=person)`` matches an inetOrgPerson.

A filter may use the indexes when it is an equality or a presence test on
an indexed attribute, an AND with such a part, or an OR made only of them.
The index only narrows the entries read: each is still tested against the
whole filter, so results are the same with and without indexes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from idsync.connectors.local.schema import Schema
from idsync.domain.filters import And, Equality, Filter, Or, Present, value_key
from idsync.errors import ConfigError

DEFAULT_INDEXED = ("objectClass", "uid", "cn", "mail", "member", "ou", "o", "dc")
"""Indexed when the store's definition does not say: the usual lookups and the naming attributes."""

INVALID = "\x00"
"""The key of a value its equality rule does not accept: kept for presence, never asked for equality."""

IndexRow = tuple[str, str]  # (attribute, value key)
Lookup = tuple[str, str | None]  # (attribute, value key), or (attribute, None) for presence


def key_text(rule: str | None, value: str) -> str:
    """The stored text of *value*'s key under equality *rule*."""
    key = value_key(rule, value)
    if key is None:
        return INVALID
    return key if isinstance(key, str) else repr(key)


def canonical_names(schema: Schema, names: Iterable[str]) -> tuple[str, ...]:
    """The lower-cased schema names of *names*, sorted; refuses names the schema lacks."""
    out: set[str] = set()
    for name in names:
        info = schema.attribute(name)
        if info is None or info.operational:
            why = "not in the directory's schema" if info is None else "operational"
            raise ConfigError(f"indexed attribute {name!r} is {why}; remove it from indexed_attributes",
                              field="indexed_attributes")
        out.add(info.name.lower())
    return tuple(sorted(out))


@dataclass(frozen=True)
class Indexer:
    """The index rows of entries and the lookups of filters, for one set of indexed attributes."""

    schema: Schema
    names: tuple[str, ...]  # lower-cased canonical names
    _specs: dict[str, tuple[str, str | None] | None] = field(default_factory=dict, compare=False, repr=False)

    def rows(self, attrs: Mapping[str, Sequence[str]]) -> set[IndexRow]:
        """The index rows of an entry with *attrs* (canonical names, as stored)."""
        out: set[IndexRow] = set()
        if not self.names:
            return out
        specs = self._specs
        for name, values in attrs.items():
            spec = specs[name] if name in specs else specs.setdefault(name, self._spec(name))
            if spec is None:
                continue
            low, rule = spec
            if low == "objectclass":  # the same few sets of classes on every entry
                out.update(_class_rows(self.schema, tuple(values)))
            else:
                out.update([(low, key_text(rule, value)) for value in values])
        return out

    def _spec(self, name: str) -> tuple[str, str | None] | None:
        """(lower-cased name, equality rule) of an indexed attribute, None for another."""
        low = name.lower()
        if low not in self.names:
            return None
        info = self.schema.attribute(name)
        return low, info.equality if info else None

    def lookups(self, flt: Filter) -> list[list[Lookup]] | None:
        """Ways to narrow *flt* by the indexes: alternatives, each a list of
        lookups whose entries together include every match (None: none)."""
        if isinstance(flt, Equality):
            names = self._names(flt.attribute, equality=True)
            if names is None:
                return None
            info = self.schema.attribute(flt.attribute)
            key = value_key(info.equality if info else None, flt.value)
            if key is None:
                return None
            text = key if isinstance(key, str) else repr(key)
            return [[(n, text) for n in names]]
        if isinstance(flt, Present):
            names = self._names(flt.attribute, equality=False)
            if names is None or flt.attribute.lower() == "objectclass":  # every entry has one
                return None
            return [[(n, None) for n in names]]
        if isinstance(flt, And):
            options = [option for part in flt.filters for option in (self.lookups(part) or ())]
            return options or None
        if isinstance(flt, Or):
            union: list[Lookup] = []
            for part in flt.filters:
                found = self.lookups(part)
                if not found:
                    return None
                union.extend(found[0])
            return [union] if union else None
        return None

    def _names(self, attribute: str, *, equality: bool) -> tuple[str, ...] | None:
        """The indexed names holding values of *attribute* (it and its subtypes), or None
        when one of them is not indexed or compares values by another rule."""
        base, semi, _ = attribute.partition(";")
        info = self.schema.attribute(base)
        if info is None or semi or (equality and info.equality is None):
            return None
        names = self.schema.subtypes(info.name)
        for name in names:
            if name not in self.names:
                return None
            sub = self.schema.attribute(name)
            if equality and (sub is None or (sub.equality or "").lower() != info.equality.lower()):  # type: ignore[union-attr]
                return None
        return names


@lru_cache(maxsize=1024)
def _class_rows(schema: Schema, classes: tuple[str, ...]) -> frozenset[IndexRow]:
    """The objectClass rows of an entry of *classes*: them, their superiors and their aliases."""
    info = schema.attribute("objectClass")
    rule = info.equality if info else None
    chain = schema.chain(classes)
    return frozenset(("objectclass", key_text(rule, n)) for n in (*classes, *(n for oc in chain for n in oc.names)))
