"""Compact attributes of the entries a search of the embedded directory returns.

A planner reads its whole scope (100,000 entries and more) and keeps them
while it compares; the plain :class:`~idsync.domain.entry.Attrs` holds per
entry a dict, two name strings, a pair and a tuple for every attribute.
:class:`StoredAttrs` holds a tuple of values per entry and shares the rest
(the names, their lower-cased forms, the position of each) among all the
entries with the same attributes: a third of the memory, and no work for
names at all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from idsync.domain.entry import Attrs, Values

Stored = str | tuple[str, ...]
"""One attribute's values as kept: the value itself when there is one (most often), else a tuple."""


class Layout:
    """The attribute names of entries that have the same ones, shared by them."""

    __slots__ = ("index", "names", "projections")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.index: dict[str, int] = {}
        for i, name in enumerate(names):
            self.index.setdefault(name.lower(), i)
            self.index.setdefault(name, i)
        self.projections: dict[tuple[str, ...], tuple[int, ...]] = {}
        """Positions of a list of names asked for again and again (a planner's compared attributes); -1: absent."""

    def projection(self, names: tuple[str, ...]) -> tuple[int, ...]:
        found = self.projections.get(names)
        if found is None:
            if len(self.projections) > 64:
                self.projections.clear()
            index = self.index
            found = self.projections[names] = tuple(
                -1 if (i := index.get(n, index.get(n.lower()))) is None else i for n in names
            )
        return found


_LAYOUTS: dict[tuple[str, ...], Layout] = {}
_LOWER: dict[str, str] = {}


def layout(names: tuple[str, ...]) -> Layout:
    """The shared layout of *names* (a directory has few distinct ones)."""
    found = _LAYOUTS.get(names)
    if found is None:
        if len(_LAYOUTS) > 4096:  # entries with ever new sets of names: do not grow without end
            _LAYOUTS.clear()
        found = _LAYOUTS[names] = Layout(tuple(sys.intern(n) for n in names))
    return found


def lower(name: str) -> str:
    """*name* lower-cased, once per distinct name (names repeat on every entry)."""
    found = _LOWER.get(name)
    if found is None:
        if len(_LOWER) > 65536:
            _LOWER.clear()
        found = _LOWER[name] = sys.intern(name.lower())
    return found


def stored(values: Sequence[str]) -> Stored:
    return values[0] if len(values) == 1 else tuple(values)


def _values(item: Stored) -> Values:
    return (item,) if isinstance(item, str) else item


class StoredAttrs(Attrs):
    """Attributes as a shared :class:`Layout` and a tuple of values; the plain
    mapping is built only when something walks it (as for ``EncodedAttrs``)."""

    __slots__ = ("_layout", "_values")

    def __init__(self, shape: Layout, values: tuple[Stored, ...]) -> None:
        # _data is left unset: __getattr__ builds it on first use.
        self._layout = shape
        self._values = values

    def __getattr__(self, name: str) -> object:
        if name != "_data":
            raise AttributeError(name)
        data = {lower(n): (n, _values(v)) for n, v in zip(self._layout.names, self._values, strict=True)}
        self._data = data
        return data

    def _position(self, name: str) -> int | None:
        index = self._layout.index
        found = index.get(name)
        return found if found is not None else index.get(name.lower())

    def get_values(self, name: str) -> Values:
        i = self._position(name)
        return () if i is None else _values(self._values[i])

    def __getitem__(self, name: str) -> Values:
        i = self._position(name)
        if i is None:
            raise KeyError(name)
        return _values(self._values[i])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._position(name) is not None

    def values_of(self, names: Iterable[str]) -> list[Values]:
        """The values of each of *names*: their positions worked out once per
        layout when *names* is a tuple (a planner compares the same ones on
        every entry of its scope)."""
        if not isinstance(names, tuple):
            return [self.get_values(name) for name in names]
        values = self._values
        return [() if i < 0 else (v,) if isinstance(v := values[i], str) else v
                for i in self._layout.projection(names)]

    def __len__(self) -> int:
        return len(self._values)
