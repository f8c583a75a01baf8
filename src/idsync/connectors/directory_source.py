"""A directory read as a data source: the source side of directory-to-directory jobs.

Any :class:`~idsync.connectors.base.Directory` (the embedded one, any LDAP
server) becomes a :class:`~idsync.connectors.base.Source`: the entries under
a base DN, within a scope, matching a filter, each turned into one
:class:`Record`:

- one field per attribute, named as the job's ``attributes`` list spells it
  (servers answer with their own spelling — slapd says ``cn`` when asked for
  ``commonName`` — so names are matched without regard to case and through
  the schema's aliases); without a list, every user attribute, named as the
  server returns it;
- the values of a multi-valued attribute joined with ``separator`` (a line
  feed by default: it occurs in almost no attribute value, and a mapping
  gets the values back with ``multi_value_delimiter`` set to the same text);
- an attribute the entry lacks is ``None``, like an empty cell;
- ``dn``: the entry's DN.

The directory is searched with its own paged search, so the source streams
like every other: memory holds one page, never the whole subtree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from idsync.connectors.base import Directory
from idsync.domain.entry import Attrs, Entry, Record, Scope
from idsync.errors import ConfigError, ConnectorError, NotFoundError, RecordError

DN_FIELD = "dn"
DEFAULT_SEPARATOR = "\n"


class DirectorySource:
    """The entries of a directory subtree as records. Owns *directory*: closing
    the source closes it."""

    def __init__(
        self,
        directory: Directory,
        base_dn: str,
        *,
        scope: Scope = Scope.SUB,
        filterstr: str = "(objectClass=*)",
        attributes: Sequence[str] | None = None,
        separator: str = DEFAULT_SEPARATOR,
        label: str | None = None,
    ) -> None:
        if not separator:
            raise ConfigError("the multi-value separator of a directory source cannot be empty")
        self.directory = directory
        self.base_dn = base_dn
        self.scope = Scope(scope)
        self.filter = filterstr
        self.separator = separator
        self.label = label or f"directory source {base_dn!r}"
        # Every spelling a job uses is a field of its own; the server is asked once per attribute.
        self.attributes: list[str] | None = None if attributes is None else _unique(attributes)
        self._aliases: dict[str, tuple[str, ...]] | None = None

    def __repr__(self) -> str:
        return f"DirectorySource({self.directory!r}, base_dn={self.base_dn!r}, scope={self.scope.value})"

    def columns(self) -> list[str] | None:
        """The fields every record has: the requested attributes and ``dn``;
        None without an attribute list (the fields are then only known per entry)."""
        if self.attributes is None:
            return None
        return [*self.attributes, DN_FIELD]

    def read(self) -> Iterator[Record | RecordError]:
        """One record per entry, in the order the directory returns them."""
        wanted = self.attributes
        if wanted is None:
            entries = self._search(None)
            sep = self.separator
            for entry in entries:
                fields: dict[str, str | None] = {name: sep.join(vals) for name, vals in entry.attrs.items()}
                fields[DN_FIELD] = entry.dn
                yield Record(fields)
            return
        aliases = self._alias_table(wanted)
        for entry in self._search(_unique(wanted, ignore_case=True) or ["1.1"]):
            yield Record(self._fields(entry.dn, entry.attrs, wanted, aliases))

    def _fields(
        self, dn: str, attrs: Attrs, wanted: list[str], aliases: dict[str, tuple[str, ...]]
    ) -> dict[str, str | None]:
        fields: dict[str, str | None] = {}
        for name in wanted:
            values = attrs.get_values(name)
            if not values:
                for alias in aliases.get(name, ()):
                    values = attrs.get_values(alias)
                    if values:
                        break
            fields[name] = self.separator.join(values) if values else None
        fields[DN_FIELD] = dn
        return fields

    def _alias_table(self, wanted: list[str]) -> dict[str, tuple[str, ...]]:
        """Requested name → its other names in the directory schema (read once)."""
        if self._aliases is None:
            schema = self.directory.schema()
            table: dict[str, tuple[str, ...]] = {}
            for name in wanted:
                at = schema.attribute(name) if schema is not None else None
                if at is not None:
                    table[name] = tuple(n for n in at.names if n.lower() != name.lower())
            self._aliases = table
        return self._aliases

    def _search(self, attributes: Sequence[str] | None) -> Iterator[Entry]:
        """The directory's search, with errors naming this source (the same
        server may be the job's destination too)."""
        try:
            yield from self.directory.search(self.base_dn, self.scope, self.filter, attributes)
        except NotFoundError as exc:
            raise self._missing_base(exc.message) from exc
        except ConfigError as exc:
            raise ConfigError(f"{self.label}: {exc.message}") from exc

    def test(self) -> str:
        """Connect and check that the base DN can be read; one line."""
        line = self.directory.test()
        try:
            found = list(self.directory.search(self.base_dn, Scope.BASE, "(objectClass=*)", ["1.1"]))
        except NotFoundError as exc:
            raise self._missing_base(exc.message) from exc
        if not found:
            raise self._missing_base(f"base DN {self.base_dn!r} is not readable")
        return f"{line}; base {self.base_dn} readable"

    def _missing_base(self, what: str) -> ConnectorError:
        """A base DN the directory lacks: the source cannot be read (a failure
        of the source, not an object the caller named that does not exist)."""
        return ConnectorError(
            f"{self.label}: {what}", field="source.base_dn", hint="create that entry, or correct the source's base DN"
        )

    def close(self) -> None:
        self.directory.close()


def _unique(names: Sequence[str], *, ignore_case: bool = False) -> list[str]:
    """*names* stripped, without repeats and without ``dn``."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        name = name.strip()
        same = name.lower() if ignore_case else name
        if not name or name.lower() == DN_FIELD or same in seen:
            continue
        seen.add(same)
        out.append(name)
    return out
