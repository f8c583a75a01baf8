"""Resolve: a value from the source → the DN of the destination object holding it.

A mapping with ``resolve: {base_dn, attribute, scope, filter, unresolved}``
looks each of its values up among the objects under ``base_dn`` whose
``attribute`` holds it (the manager's employee number → the manager's DN;
member keys → member DNs). Lookups go through an index built by one paged
search per run, never a search per record; mappings that share base, scope,
filter and attribute share one index. The planner reads the indexes with
the destination, before the run writes anything: a value naming an object
the same run creates resolves on the next run.

Values compare as the planner's keys do (case-folded, spaces collapsed). A
value matching no object, or several, is *unresolved*: with ``unresolved:
error`` (the default) the record fails; with ``report`` the value is left
out, reported, and the record goes on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from idsync.connectors.base import Directory
from idsync.domain.definitions import JobDefinition, Resolve
from idsync.domain.dn import normalize_dn
from idsync.domain.entry import Entry, Scope, Values
from idsync.domain.results import ErrorItem
from idsync.engine.heap import collector_paused
from idsync.engine.mapping import MappedRecord, normalize_key
from idsync.errors import ConfigError, ConnectorError, NotFoundError, RecordError

AMBIGUOUS = None
"""What the index holds for a value several objects have."""


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """What one index covers: the objects under ``base_dn`` (normalised) in
    ``scope`` matching ``filter``, keyed by ``attribute`` (lower-cased)."""

    base_dn: str
    scope: Scope
    filter: str
    attribute: str

    @classmethod
    def of(cls, rule: Resolve) -> IndexSpec:
        try:
            base = normalize_dn(rule.base_dn)
        except ConfigError:
            base = rule.base_dn
        return cls(base, rule.scope, rule.filter, rule.attribute.lower())


class ValueIndex:
    """Normalised value → DN of the one object holding it (``AMBIGUOUS`` when several do)."""

    __slots__ = ("_dns", "size")

    def __init__(self) -> None:
        self._dns: dict[str, str | None] = {}
        self.size = 0

    @classmethod
    def build(cls, entries: Iterable[Entry], attribute: str) -> ValueIndex:
        index = cls()
        for entry in entries:
            index.size += 1
            for value in entry.attrs.get_values(attribute):
                index.add(value, entry.dn)
        return index

    def add(self, value: str, dn: str) -> None:
        key = normalize_key(value)
        if key not in self._dns:
            self._dns[key] = dn
        elif self._dns[key] is not AMBIGUOUS and self._dns[key] != dn:
            self._dns[key] = AMBIGUOUS

    def lookup(self, value: str) -> tuple[bool, str | None]:
        """(found, DN): found False when no object holds *value*; DN None when several do."""
        key = normalize_key(value)
        if key not in self._dns:
            return False, None
        return True, self._dns[key]

    def __len__(self) -> int:
        return len(self._dns)


class Resolver:
    """The resolve rules of one job, with their indexes, for one run."""

    def __init__(self, job: JobDefinition, directory: Directory) -> None:
        self.directory = directory
        self.rules: dict[str, Resolve] = {
            m.attribute.lower(): m.resolve for m in job.mappings if m.resolve is not None
        }
        self._names = {m.attribute.lower(): m.attribute for m in job.mappings}
        self._indexes: dict[IndexSpec, ValueIndex] = {}
        self.searches = 0

    @property
    def attributes(self) -> frozenset[str]:
        """Lower-cased names of the attributes whose values are resolved DNs."""
        return frozenset(self.rules)

    def index(self, rule: Resolve) -> ValueIndex:
        """The index of *rule*, read with one paged search the first time it is asked for."""
        spec = IndexSpec.of(rule)
        found = self._indexes.get(spec)
        if found is None:
            self.searches += 1
            try:
                entries = self.directory.search(rule.base_dn, rule.scope, rule.filter, [rule.attribute])
                found = self._indexes[spec] = ValueIndex.build(entries, rule.attribute)
            except NotFoundError as exc:
                # A lookup base the directory lacks fails the run, like a missing destination.
                raise ConnectorError(
                    exc.message, hint="create that entry, or correct the mapping's resolve base_dn"
                ) from exc
        return found

    def prefetch(self) -> None:
        """Read every index now: the planner does it with the destination, before
        the run writes anything, so all records resolve against the same state."""
        with collector_paused():  # lookup indexes hold no reference cycles (see engine.heap)
            for rule in self.rules.values():
                self.index(rule)

    def resolve(self, rec: MappedRecord) -> tuple[dict[str, Values], list[ErrorItem]]:
        """The record's values with resolved attributes turned into DNs, and
        the values reported (``unresolved: report``) as error items.

        Raises RecordError for the first unresolved value of a rule with
        ``unresolved: error``.
        """
        values = dict(rec.values)
        if not self.rules:
            return values, []
        reported: list[ErrorItem] = []
        for attr, rule in self.rules.items():
            wanted = values.get(attr, ())
            if not wanted:
                continue
            index = self.index(rule)
            name = self._names.get(attr, attr)
            dns: list[str] = []
            for value in wanted:
                found, dn = index.lookup(value)
                if dn is not None:
                    if dn not in dns:
                        dns.append(dn)
                    continue
                why = (
                    f"matches several objects under {rule.base_dn}" if found
                    else f"matches no object under {rule.base_dn}"
                )
                message = f"{rule.attribute} {value!r} {why}"
                if rule.unresolved == "error":
                    raise RecordError(
                        f"{message}; fix the source or the directory, or set resolve.unresolved: report",
                        key=rec.key_text,
                        attribute=name,
                        line=rec.line,
                    )
                reported.append(
                    ErrorItem(f"{message}; left out", key=rec.key_text, attribute=name, line=rec.line)
                )
            values[attr] = tuple(dns)
        return values, reported


def same_dns(a: Values, b: Values) -> bool:
    """Whether two lists of DNs name the same objects (DN syntax, not text, compared)."""
    return len(a) == len(b) and {_norm(v) for v in a} == {_norm(v) for v in b}


def _norm(dn: str) -> str:
    try:
        return normalize_dn(dn)
    except ConfigError:
        return dn.lower()
