"""Directory entries and source records.

Vocabulary used everywhere: ``dn`` a distinguished-name string; ``attrs`` a
case-insensitive mapping of attribute name to a tuple of string values;
``entry`` a ``dn`` with its ``attrs``; ``record`` one source row; ``anchor``
a directory object's immutable id (``entryUUID``, ``objectGUID``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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

    @classmethod
    def adopt(cls, data: dict[str, tuple[str, Values]]) -> Attrs:
        """Take over *data*, already in the inner form ``{lower-cased name:
        (name as spelled, values)}``: no copy, no check. For the planner, which
        builds every new object's attributes in that form directly."""
        self = cls.__new__(cls)
        self._data = data
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

    def values_of(self, names: Iterable[str]) -> list[Values]:
        """:meth:`get_values` of each of *names*, in one call (a planner compares whole rows)."""
        return [self.get_values(name) for name in names]

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


Decoder = Callable[[str, bytes], str]
"""Turns one value of the named attribute, as a directory sent it, into text."""


class EncodedAttrs(Attrs):
    """Attributes as a directory sent them (name → list of bytes), each
    decoded only when it is read.

    A planner reads a whole scope but looks at a few attributes of each
    entry, most often only to find them equal; decoding every value of every
    entry up front was a third of a no-change run. :meth:`get_values` decodes
    one attribute (again on each call: callers read an attribute once);
    anything that walks the whole mapping decodes everything, once.

    *decode* gets the attribute's name as the directory spelled it; None
    means UTF-8 (with ``surrogateescape``, so binary values survive).
    """

    __slots__ = ("_decoder", "_names", "_raw")

    def __init__(self, raw: Mapping[str, Sequence[bytes]], decode: Decoder | None = None) -> None:
        # _data (the decoded mapping) is left unset: __getattr__ builds it on first use.
        self._raw = raw
        self._decoder = decode
        self._names: dict[str, str] | None = None

    def __getattr__(self, name: str) -> object:
        if name != "_data":
            raise AttributeError(name)
        data = {spelled.lower(): (spelled, self._decoded(spelled, vals)) for spelled, vals in self._raw.items()}
        self._data = data
        return data

    def _decoded(self, spelled: str, values: Sequence[bytes]) -> Values:
        decode = self._decoder
        if decode is None:
            return tuple([v.decode("utf-8", "surrogateescape") for v in values])
        return tuple([decode(spelled, v) for v in values])

    def _spelled(self, name: str) -> str | None:
        """The directory's spelling of *name* (names compare without regard to case)."""
        if name in self._raw:
            return name
        names = self._names
        if names is None:
            names = self._names = {spelled.lower(): spelled for spelled in self._raw}
        return names.get(name.lower())

    def get_values(self, name: str) -> Values:
        raw = self._raw.get(name)
        if raw is None:
            spelled = self._spelled(name)
            if spelled is None:
                return ()
            name, raw = spelled, self._raw[spelled]
        if self._decoder is None and len(raw) == 1:  # most attributes hold one text value
            return (raw[0].decode("utf-8", "surrogateescape"),)
        return self._decoded(name, raw)

    def __getitem__(self, name: str) -> Values:
        spelled = self._spelled(name)
        if spelled is None:
            raise KeyError(name)
        return self._decoded(spelled, self._raw[spelled])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._spelled(name) is not None


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
