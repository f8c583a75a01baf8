"""Directory entries and source records.

Vocabulary used everywhere: ``dn`` a distinguished-name string; ``attrs`` a
case-insensitive mapping of attribute name to a tuple of string values;
``entry`` a ``dn`` with its ``attrs``; ``record`` one source row; ``anchor``
a directory object's immutable id (``entryUUID``, ``objectGUID``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field


class Scope(enum.StrEnum):
    """LDAP search scope."""

    BASE = "base"
    ONE = "one"
    SUB = "sub"


Values = tuple[str, ...]


class Attrs(Mapping[str, Values]):
    """An immutable mapping of attribute name to values, with names compared
    without regard to case (as LDAP does), keeping the spelling first given.
    """

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, Iterable[str]] | Iterable[tuple[str, Iterable[str]]] = ()) -> None:
        data: dict[str, tuple[str, Values]] = {}
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, values in pairs:
            vals = (values,) if isinstance(values, str) else tuple(values)
            low = name.lower()
            if low in data:
                data[low] = (data[low][0], data[low][1] + vals)
            else:
                data[low] = (name, vals)
        self._data = data

    @classmethod
    def from_unique(cls, items: Mapping[str, Iterable[str]]) -> Attrs:
        """Build from a mapping whose names are already distinct without regard to
        case (as a directory returns them): one pass, no merging. A hot path of
        every search."""
        self = cls.__new__(cls)
        self._data = {name.lower(): (name, tuple(values)) for name, values in items.items()}
        return self

    def __getitem__(self, name: str) -> Values:
        return self._data[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._data

    def __iter__(self) -> Iterator[str]:
        return (spelled for spelled, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def get_values(self, name: str) -> Values:
        """The values of *name*, or an empty tuple when absent."""
        hit = self._data.get(name.lower())
        return hit[1] if hit else ()

    def first(self, name: str) -> str | None:
        values = self.get_values(name)
        return values[0] if values else None

    def pairs(self) -> Iterable[tuple[str, Values]]:
        """(name as spelled, values) of every attribute: the cheapest way to walk them."""
        return self._data.values()

    def to_dict(self) -> dict[str, list[str]]:
        return {spelled: list(vals) for spelled, vals in self._data.values()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attrs):
            return NotImplemented
        return {k: v[1] for k, v in self._data.items()} == {k: v[1] for k, v in other._data.items()}

    def __hash__(self) -> int:
        return hash(frozenset((k, v[1]) for k, v in self._data.items()))

    def __repr__(self) -> str:
        return f"Attrs({self.to_dict()!r})"


@dataclass(frozen=True, slots=True)
class Entry:
    """A directory object: its DN and attributes (possibly only some of them)."""

    dn: str
    attrs: Attrs = field(default_factory=Attrs)


@dataclass(frozen=True, slots=True)
class Record:
    """One source row: field name to value (``None`` for a missing cell).

    ``line`` is where the record starts in the source (1-based, when the
    source has lines), so errors can point at it.
    """

    fields: Mapping[str, str | None]
    line: int | None = None

    def get(self, name: str) -> str | None:
        return self.fields.get(name)
