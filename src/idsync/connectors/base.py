"""The two small interfaces every connector implements, and their registry.

A **source** yields records; a **directory** searches, applies changes and
describes its schema. Each implementation is one module of this package,
registered here by kind; third-party connectors register through the
``idsync.connectors`` entry-point group (an entry point named ``ldap`` or
``csv`` points at a factory taking the definition and its secrets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Protocol, runtime_checkable

from idsync.domain.changes import Change
from idsync.domain.entry import Entry, Record, Scope
from idsync.errors import ConfigError, RecordError


@dataclass(frozen=True, slots=True)
class AttributeType:
    """An attribute type of a directory schema."""

    names: tuple[str, ...]
    single_value: bool = False
    no_user_modification: bool = False

    @property
    def name(self) -> str:
        return self.names[0]


@dataclass(frozen=True, slots=True)
class ObjectClass:
    """An object class of a directory schema (``kind``: structural, auxiliary, abstract)."""

    names: tuple[str, ...]
    superiors: tuple[str, ...] = ()
    kind: str = "structural"
    must: tuple[str, ...] = ()
    may: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.names[0]


@dataclass(frozen=True)
class DirectorySchema:
    """The attribute types and object classes a directory knows.

    Lookups are case-insensitive and accept every alias (``cn`` and
    ``commonName`` are the same attribute).
    """

    attribute_types: Sequence[AttributeType]
    object_classes: Sequence[ObjectClass]
    _attrs: dict[str, AttributeType] = field(init=False, repr=False)
    _classes: dict[str, ObjectClass] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_attrs", {n.lower(): at for at in self.attribute_types for n in at.names}
        )
        object.__setattr__(
            self, "_classes", {n.lower(): oc for oc in self.object_classes for n in oc.names}
        )

    def attribute(self, name: str) -> AttributeType | None:
        """The attribute type named *name* (any alias, any case), or None."""
        return self._attrs.get(name.split(";", 1)[0].lower())

    def object_class(self, name: str) -> ObjectClass | None:
        return self._classes.get(name.lower())

    def class_chain(self, names: Iterable[str]) -> list[ObjectClass]:
        """The named classes with all their superiors; unknown names raise ConfigError."""
        seen: dict[str, ObjectClass] = {}
        todo = list(names)
        while todo:
            name = todo.pop()
            oc = self.object_class(name)
            if oc is None:
                raise ConfigError(f"object class {name!r} is not in the directory schema")
            if oc.name.lower() not in seen:
                seen[oc.name.lower()] = oc
                todo.extend(oc.superiors)
        return list(seen.values())

    def required_attributes(self, classes: Iterable[str]) -> set[str]:
        """Lower-cased canonical names of the attributes the classes require."""
        out: set[str] = set()
        for oc in self.class_chain(classes):
            for n in oc.must:
                at = self.attribute(n)
                out.add((at.name if at else n).lower())
        return out

    def allowed_attributes(self, classes: Iterable[str]) -> set[str]:
        """Lower-cased canonical names of the attributes the classes allow (must + may)."""
        out: set[str] = set()
        for oc in self.class_chain(classes):
            for n in (*oc.must, *oc.may):
                at = self.attribute(n)
                out.add((at.name if at else n).lower())
        return out


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """The result of applying one change: ``error`` is None on success."""

    change: Change
    error: RecordError | None = None


@runtime_checkable
class Directory(Protocol):
    """An identity store: a directory idsync reads and writes."""

    def search(
        self,
        base: str,
        scope: Scope = Scope.SUB,
        filterstr: str = "(objectClass=*)",
        attributes: Sequence[str] | None = None,
    ) -> Iterator[Entry]:
        """Entries under *base* matching the RFC 4515 filter, read page by page.

        ``attributes`` None means all user attributes; the operational
        ``entryUUID`` (or the server's anchor attribute) is returned when asked for.
        A *base* that does not exist raises NotFoundError.
        """
        ...

    def apply(self, changes: Iterable[Change]) -> Iterator[ApplyOutcome]:
        """Apply the changes, yielding one outcome per change as each completes.

        Writes may be pipelined (several outstanding); outcomes may come in
        another order than the changes. A record-level failure is an outcome
        with an error; a lost connection raises ConnectorError.
        """
        ...

    def schema(self) -> DirectorySchema | None:
        """The directory's schema, or None when the server does not publish one."""
        ...

    def test(self) -> str:
        """Connect and bind; return a one-line description, or raise ConnectorError."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Source(Protocol):
    """A data source: yields records (or record errors for unreadable rows)."""

    def read(self) -> Iterator[Record | RecordError]:
        """Stream the records; a malformed row is yielded as a RecordError, not raised."""
        ...

    def test(self) -> str:
        """Open the source; return a one-line description, or raise ConnectorError."""
        ...

    def close(self) -> None: ...


Factory = Callable[[Any, Mapping[str, str]], Any]

# kind -> "module:function", imported only when used so optional drivers
# (python-ldap) are needed only by those who use them.
_BUILTIN: dict[str, str] = {
    "local": "idsync.connectors.local:open_local_directory",
    "ldap": "idsync.connectors.ldap:open_ldap_directory",
    "csv": "idsync.connectors.csv:open_csv_source",
    "excel": "idsync.connectors.excel:open_excel_source",
    "sql": "idsync.connectors.sql:open_sql_source",
}


def factory_for(kind: str) -> Factory:
    """The factory registered for connector *kind* (built in or by entry point)."""
    target = _BUILTIN.get(kind)
    if target is None:
        # Imported here, for a plug-in kind only: 20 ms, and an embedded directory's writer process needs none.
        from importlib.metadata import entry_points

        for ep in entry_points(group="idsync.connectors"):
            if ep.name == kind:
                fn: Factory = ep.load()
                return fn
        raise ConfigError(f"unknown connector kind {kind!r}; known: {', '.join(sorted(_BUILTIN))}")
    module_name, func = target.split(":")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"the {kind!r} connector needs an optional package: {exc.name} "
            f"(install idsync[{kind}])"
        ) from exc
    fn2: Factory = getattr(module, func)
    return fn2
