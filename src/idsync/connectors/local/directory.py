"""The embedded directory: the LDAP data model in one SQLite file.

It answers ``search`` and ``apply`` the way slapd does for everything idsync
asks (the shared contract suite runs against both): a DN tree compared by
normalized DNs, schema checks, LDAP modify semantics, subtree moves,
``entryUUID`` and timestamps. Changes are applied in batches, one transaction
each, and their outcomes are reported only once the batch is committed, so a
crash never leaves an outcome that did not happen.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, NamedTuple

from idsync.connectors.base import ApplyOutcome, DirectorySchema
from idsync.connectors.local import suffix as suffixes
from idsync.connectors.local.attrs import Layout, Stored, StoredAttrs, layout, lower, stored
from idsync.connectors.local.index import DEFAULT_INDEXED, Indexer, canonical_names
from idsync.connectors.local.operations import apply_mods, entry_for_add, rename_attrs
from idsync.connectors.local.schema import Schema, load_schema
from idsync.connectors.local.storage import (
    PAGE,
    Row,
    Storage,
    dn_key,
    dumps,
    entry_uuid,
    leaf_rdn,
    loads,
    parent_key,
    subtree_end,
)
from idsync.connectors.local.validate import LdapFailure, check_entry, structural_class
from idsync.connectors.local.writer import WriterProcess
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.dn import RDN, format_dn, parse_dn
from idsync.domain.entry import Entry, Scope
from idsync.domain.filters import (
    Compiled,
    Filter,
    Present,
    compile_filter,
    filter_attributes,
    parse_filter,
)
from idsync.errors import ConfigError, ConnectorError, NotFoundError, RecordError

log = logging.getLogger(__name__)

WRITER_AFTER = 2000
"""Changes an apply makes itself before it starts a writer process. Starting
one takes about 0.12 s, in which this process applies a few thousand more;
a smaller load is done before a writer would help."""

INDEX_LIMIT = 20_000
"""Above this many candidates an index lookup is not used: reading the scope costs about as much."""

# Operational attributes the directory maintains, in the order slapd returns them.
OPERATIONAL = ("structuralObjectClass", "entryUUID", "createTimestamp", "modifyTimestamp",
               "entryDN", "subschemaSubentry", "hasSubordinates")
_OPERATIONAL_LOWER = {name.lower(): name for name in OPERATIONAL}
# LDAP result names -> the descriptions libldap gives them (what the LDAP connector reports).
_RESULTS = {
    "noSuchObject": "No such object",
    "alreadyExists": "Already exists",
    "notAllowedOnNonLeaf": "Operation not allowed on non-leaf",
    "objectClassViolation": "Object class violation",
    "objectClassModsProhibited": "Cannot modify object class",
    "namingViolation": "Naming violation",
    "typeOrValueExists": "Type or value exists",
    "noSuchAttribute": "No such attribute",
    "undefinedAttributeType": "Undefined attribute type",
    "constraintViolation": "Constraint violation",
    "invalidAttributeSyntax": "Invalid syntax",
    "invalidDNSyntax": "Invalid DN syntax",
    "unwillingToPerform": "Server is unwilling to perform",
    "protocolError": "Protocol error",
    "inappropriateMatching": "Inappropriate matching",
}

_VERBS = {ChangeOp.CREATE: "add", ChangeOp.UPDATE: "modify", ChangeOp.DISABLE: "modify",
          ChangeOp.DELETE: "delete", ChangeOp.MOVE: "move"}


_COLUMNS = {"entryUUID": 2, "createTimestamp": 3, "modifyTimestamp": 4, "entryDN": 1}
"""Operational attributes read from a row's columns as they are."""


@dataclass(slots=True)
class _View:
    """Which attributes a search returns, and how for each set of stored names met."""

    all_user: bool
    user: frozenset[str]  # lower-cased canonical names, when not all_user
    operational: tuple[str, ...]
    # stored names (in stored order) -> the names returned and their shared layout
    shapes: dict[tuple[str, ...], tuple[tuple[str, ...], Layout]] = field(default_factory=dict)
    columns_only: bool = field(init=False)
    """True when every operational attribute asked for is a column (the common
    case); asked for every entry returned, so worked out once."""
    columns: tuple[int, ...] = field(init=False)
    """The row positions of the operational attributes, when columns_only."""

    def __post_init__(self) -> None:
        self.columns_only = all(name in _COLUMNS for name in self.operational)
        self.columns = tuple(_COLUMNS[name] for name in self.operational) if self.columns_only else ()

    @property
    def subordinates(self) -> bool:
        return "hasSubordinates" in self.operational

    def shape(self, keys: tuple[str, ...]) -> tuple[tuple[str, ...], Layout]:
        found = self.shapes.get(keys)
        if found is None:
            names = keys if self.all_user else tuple(k for k in keys if lower(k) in self.user)
            found = self.shapes[keys] = (names, layout(names + self.operational))
        return found


class LocalDirectory:
    """An identity store in a local file, with the LDAP data model."""

    IN_FLIGHT = 2
    """Batches with a writer process at a time."""

    def __init__(
        self,
        path: Path,
        suffix: str = "dc=example,dc=org",
        *,
        schema_files: Sequence[Path] = (),
        clock: Callable[[], datetime] | None = None,
        batch_size: int = 500,
        suffix_attributes: Mapping[str, Sequence[str]] | None = None,
        indexed_attributes: Sequence[str] | None = None,
        writer_after: int | None = WRITER_AFTER,
    ) -> None:
        self.path = Path(path)
        self._suffix_given = suffix_attributes
        self.suffix = format_dn(parse_dn(suffix))
        if not self.suffix:
            raise ConfigError("the suffix of an embedded directory cannot be empty (e.g. dc=example,dc=org)")
        self._suffix_key = dn_key(suffix)
        self._schema: Schema = load_schema(tuple(Path(p) for p in schema_files))
        names = DEFAULT_INDEXED if indexed_attributes is None else indexed_attributes
        self._indexer = Indexer(self._schema, canonical_names(self._schema, names))
        self._clock = clock or (lambda: datetime.now(UTC))
        self._batch_size = max(1, batch_size)
        self._schema_files = tuple(Path(p) for p in schema_files)
        # A writer process needs the default clock: it has its own.
        self._writer_after = writer_after if clock is None else None
        self._parents: dict[str, str] = {}  # parent key -> stored DN, within one batch
        self._second, self._stamp = -1, ""
        self._store = Storage(self.path)
        try:
            self._initialize()
        except BaseException:
            self._store.close()
            raise

    def _initialize(self) -> None:
        store = self._store
        with store.lock:
            try:
                store.create_tables()
                store.begin()
                current = store.indexed() == self._indexer.names
                store.indexer = self._indexer if current else None
                stored = store.get_meta("suffix")
                if stored is None:
                    suffixes.create(store, self._schema, self.suffix, self._suffix_key, self._suffix_given, self._now())
                elif self._suffix_given is not None and dn_key(stored) == self._suffix_key:
                    suffixes.refresh(store, self._schema, self._suffix_key, self._suffix_given, self._now())
                if not current:
                    log.info("embedded directory %s: indexing %s", self.path, ", ".join(self._indexer.names) or "nothing")
                    store.rebuild_index(self._indexer)
                store.mark_current()
                store.commit()
            except LdapFailure as exc:
                store.rollback()
                given = self._suffix_given is not None
                raise ConfigError(
                    f"cannot create the suffix entry {self.suffix}"
                    f"{' from suffix_attributes' if given else ''}: {exc.detail}",
                    field="suffix_attributes" if given else "suffix",
                ) from exc
            except sqlite3.Error as exc:
                store.rollback()
                raise store.fail(exc, "opening") from exc
        if stored is not None and dn_key(stored) == self._suffix_key:
            self.suffix = stored
        elif stored is not None:
            self._store.close()
            raise ConfigError(
                f"embedded directory {self.path} holds suffix {stored}, not {self.suffix}; "
                f"use suffix {stored!r} or another file"
            )

    def _index_fresh(self) -> None:
        """Follow the file's indexed attributes, should another process have
        changed them since this one opened it (its definition did)."""
        stored = self._store.indexed()
        indexer = self._store.indexer
        if indexer is None or stored != indexer.names:
            self._store.indexer = Indexer(self._schema, stored or ())

    def _now(self) -> str:
        now = self._clock()
        second = int(now.timestamp())
        if second != self._second:  # formatted once a second: every entry written asks
            self._second, self._stamp = second, now.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")
        return self._stamp

    # ------------------------------------------------------------ Directory protocol

    def schema(self) -> DirectorySchema:
        return self._schema.directory_schema

    def checks_values(self, attribute: str) -> bool:
        """True when a modify can delete values of *attribute* by value (it has
        an equality matching rule), so the values a change replaces can be
        named for the directory to check."""
        info = self._schema.attribute(attribute)
        return info is not None and info.equality is not None

    def test(self) -> str:
        with self._store.lock:
            self._check_open()
            try:
                count = self._store.count()
            except sqlite3.Error as exc:
                raise self._store.fail(exc, "counting entries") from exc
        return f"embedded directory {self.path}, suffix {self.suffix}, {count} entries"

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> LocalDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._store.closed:
            raise ConnectorError(f"embedded directory {self.path} is closed")

    # ------------------------------------------------------------ search

    def search(
        self,
        base: str,
        scope: Scope = Scope.SUB,
        filterstr: str = "(objectClass=*)",
        attributes: Sequence[str] | None = None,
    ) -> Iterator[Entry]:
        """Entries under *base* matching the filter, streamed a page at a time.

        The filter and base are checked at once: a bad filter raises
        ConfigError and a missing base NotFoundError before any entry is read.
        """
        flt = parse_filter(filterstr)
        base_key = dn_key(base)
        with self._store.lock:
            self._check_open()
            try:
                found = self._store.exists(base_key)
            except sqlite3.Error as exc:
                raise self._store.fail(exc, "searching") from exc
        if not found:
            raise NotFoundError(f"search base {base!r} does not exist in embedded directory {self.path}")
        test = None if _is_everything(flt) else compile_filter(flt, self._schema.rules)
        wanted = {self._canonical(a) for a in filter_attributes(flt)}
        return self._scan(base_key, Scope(scope), flt, test, wanted, self._view(attributes))

    def _canonical(self, name: str) -> str:
        info = self._schema.attribute(name)
        return info.name.lower() if info else name.lower()

    def _view(self, attributes: Sequence[str] | None) -> _View:
        if not attributes:  # None or an empty list: all user attributes (RFC 4511 4.5.1.8)
            return _View(True, frozenset(), ())
        names = {a.lower() for a in attributes}
        user: set[str] = set()
        for name in names - {"*", "+", "1.1"}:
            info = self._schema.attribute(name)
            if info is not None and not info.operational:
                user.update(self._schema.subtypes(info.name))
        oper = tuple(n for n in OPERATIONAL if "+" in names or n.lower() in names)
        return _View("*" in names, frozenset(user), oper)

    def _scan(
        self, base_key: str, scope: Scope, flt: Filter, test: Compiled | None, wanted: set[str], view: _View
    ) -> Iterator[Entry]:
        store = self._store
        children, times = view.subordinates, _needs_times(view, wanted)
        if test is not None and scope is not Scope.BASE:
            with store.lock:
                self._check_open()
                try:
                    self._index_fresh()
                    keys = self._indexed_keys(flt, base_key, scope)
                except sqlite3.Error as exc:
                    raise store.fail(exc, "searching") from exc
            if keys is not None:
                yield from self._fetch(keys, test, wanted, view, times)
                return
        low, inclusive = (base_key, True) if scope is not Scope.ONE else ("", False)
        while True:
            with store.lock:
                self._check_open()
                try:
                    if scope is Scope.BASE:
                        rows = store.base_row(base_key, children=children, times=times)
                    elif scope is Scope.ONE:
                        rows = store.child_page(base_key, low, children=children, times=times)
                    else:
                        end = subtree_end(base_key)
                        rows = store.page(low, end, inclusive=inclusive, children=children, times=times)
                except sqlite3.Error as exc:
                    raise store.fail(exc, "searching") from exc
            yield from self._matching(rows, test, wanted, view)
            if scope is Scope.BASE or len(rows) < PAGE:
                return
            low, inclusive = rows[-1][0], False

    def _indexed_keys(self, flt: Filter, base_key: str, scope: Scope) -> list[tuple[str, int]] | None:
        """(key, id) of the entries of the scope the indexes narrow *flt* to, in
        key order; None when no index helps (the scope is scanned instead)."""
        store = self._store
        indexer = store.indexer
        options = indexer.lookups(flt) if indexer is not None else None
        if not options:
            return None
        best: list[tuple[str, str | None]] | None = None
        most = INDEX_LIMIT
        for option in options:
            count = sum(store.count_lookup(attr, value, most) for attr, value in option)
            if count < most:
                best, most = option, count
        if best is None or store.count_scope(base_key, one=scope is Scope.ONE, limit=4 * most + 1) <= 4 * most:
            return None  # a scope hardly larger than the candidates: reading it is cheaper
        ids = sorted({i for attr, value in best for i in store.lookup(attr, value)})
        end = subtree_end(base_key)
        if scope is Scope.ONE:
            keys = [(k, i) for k, i in store.keys_of(ids) if parent_key(k) == base_key and k != base_key]
        else:
            keys = [(k, i) for k, i in store.keys_of(ids) if base_key <= k < end]
        log.debug("search below %s: %d candidate(s) from the index on %s", base_key, len(keys), best[0][0])
        return sorted(keys)

    def _fetch(
        self, keys: list[tuple[str, int]], test: Compiled | None, wanted: set[str], view: _View, times: bool
    ) -> Iterator[Entry]:
        store = self._store
        for i in range(0, len(keys), 500):
            ids = [ident for _key, ident in keys[i : i + 500]]
            with store.lock:
                self._check_open()
                try:
                    rows = store.rows_of(ids, children=view.subordinates, times=times)
                except sqlite3.Error as exc:
                    raise store.fail(exc, "searching") from exc
            yield from self._matching(rows, test, wanted, view)

    def _matching(
        self, rows: list[tuple[Any, ...]], test: Compiled | None, wanted: set[str], view: _View
    ) -> Iterator[Entry]:
        """The entries of *rows* the filter's *test* accepts."""
        classes = "objectclass" in wanted
        operational = bool(wanted & {"entryuuid", "createtimestamp", "modifytimestamp", "entrydn"})
        needed = _needed(self._schema, frozenset(wanted))
        # A test of the object classes alone (a job's scope): its answer once per set of classes.
        by_classes: dict[tuple[str, ...], bool] | None = {} if needed <= {"objectclass"} and not operational else None
        for row in rows:
            attrs = loads(row[5])
            if test is not None and by_classes is not None:
                classes_of = tuple(attrs.get("objectClass", ()))
                ok = by_classes.get(classes_of)
                if ok is None:
                    expanded = {"objectclass": list(_expanded(self._schema, classes_of))}
                    ok = by_classes[classes_of] = test(partial(_values_of, expanded)) is True
                if not ok:
                    continue
            elif test is not None:
                lowered = {low: v for k, v in attrs.items() if (low := lower(k)) in needed}
                if classes:
                    lowered["objectclass"] = list(_expanded(self._schema, tuple(attrs.get("objectClass", ()))))
                if operational:
                    lowered.update(entryuuid=[row[2]], createtimestamp=[row[3]],
                                   modifytimestamp=[row[4]], entrydn=[row[1]])
                if test(partial(_values_of, lowered)) is not True:
                    continue
            yield self._entry(row, attrs, view)

    def _entry(self, row: tuple[Any, ...], attrs: dict[str, list[str]], view: _View) -> Entry:
        if view.columns_only:  # names and layout worked out once per set of stored names
            names_, shape = view.shape(tuple(attrs))
            out: list[Stored] = [v[0] if len(v) == 1 else tuple(v) for v in map(attrs.__getitem__, names_)]
            if view.columns:
                out += map(row.__getitem__, view.columns)
            return Entry(row[1], StoredAttrs(shape, tuple(out)))
        names = list(attrs) if view.all_user else [k for k in attrs if lower(k) in view.user]
        values = [stored(attrs[k]) for k in names]
        for name in view.operational:
            value = self._operational(name, row, attrs)
            if value is not None:
                names.append(name)
                values.append(value)
        return Entry(row[1], StoredAttrs(layout(tuple(names)), tuple(values)))

    def _operational(self, name: str, row: tuple[Any, ...], attrs: dict[str, list[str]]) -> str | None:
        if name == "structuralObjectClass":
            return _structural(self._schema, tuple(attrs.get("objectClass", ())))
        if name == "hasSubordinates":
            return "TRUE" if row[6] else "FALSE"
        if name == "subschemaSubentry":
            return "cn=Subschema"
        return str(row[_COLUMNS[name]])

    # ------------------------------------------------------------ apply

    def apply(self, changes: Iterable[Change]) -> Iterator[ApplyOutcome]:
        """Apply the changes in order, in committed batches; one outcome per change.

        Once *writer_after* changes are applied, a writer process
        (:mod:`.writer`) is started; it takes the batches over once it has
        opened the file (after twice as many changes at the latest). This
        process then prepares a batch (checks its new entries' names and
        values) while the writer stores those before, so a load uses two
        cores, as a client and its LDAP server do. A caller that stops at a
        failure then stops up to two batches later: they were read while
        the failing one was written."""
        batches = _batches(changes, self._batch_size)
        after = self._writer_after
        applied, writer, started = 0, None, False
        try:
            for batch in batches:
                yield from self._apply_batch(batch)
                applied += len(batch)
                if after is None:
                    continue
                if not started and applied >= after:
                    started, writer = True, self._start_writer()
                # Its start-up overlaps the batches since; it takes over once it has
                # opened the file, and after as many changes again at the latest.
                if writer is not None and (writer.ready() or applied >= 2 * after):
                    yield from self._apply_through_writer(writer, batches)
                    return
        finally:
            if writer is not None:
                writer.close()

    def _start_writer(self) -> WriterProcess | None:
        try:
            writer = WriterProcess(self.writer_config())
        except ConnectorError as exc:
            log.warning("%s; writing in this process", exc.message)
            return None
        log.debug("embedded directory %s: writer process %d started", self.path, writer.pid)
        return writer

    def _apply_batch(self, batch: list[Change]) -> list[ApplyOutcome]:
        items, found = self._prepared(batch)
        found.update(self.write_batch(items))
        return self._outcomes_of(batch, found)

    def _apply_through_writer(self, writer: WriterProcess, batches: Iterator[list[Change]]) -> Iterator[ApplyOutcome]:
        """:meth:`apply` for the rest of the batches, through *writer*. Two
        batches are with it at a time, so it has the next when it ends one."""
        log.debug("embedded directory %s: writer process %d stores the next batches", self.path, writer.pid)
        sent: deque[tuple[list[Change], dict[int, Failure]]] = deque()
        while True:
            try:  # the next batch, made (by the caller's planner) while the writer stores those sent
                batch = next(batches, None)
                if batch is None:
                    break
                upcoming = self._prepared(batch)
            except Exception:
                while sent:  # what was sent is committed: say so
                    yield from self._outcomes(writer, *sent.popleft())
                raise
            done = self._outcomes(writer, *sent.popleft()) if len(sent) == self.IN_FLIGHT else []
            sent.append(self._send(writer, batch, *upcoming))
            yield from done
        while sent:
            yield from self._outcomes(writer, *sent.popleft())

    def _prepared(self, batch: list[Change]) -> tuple[list[tuple[int, Prepared]], dict[int, Failure]]:
        """The batch's changes prepared, by position, and the failures met preparing them."""
        items: list[tuple[int, Prepared]] = []
        found: dict[int, Failure] = {}
        for i, change in enumerate(batch):
            try:
                items.append((i, self._prepare(change)))
            except (LdapFailure, ConfigError) as exc:
                found[i] = failure_of(exc)
        return items, found

    def _send(
        self, writer: WriterProcess, batch: list[Change], items: list[tuple[int, Prepared]], found: dict[int, Failure]
    ) -> tuple[list[Change], dict[int, Failure]]:
        self._check_open()
        writer.send(items)
        return batch, found

    def _outcomes(self, writer: WriterProcess, batch: list[Change], found: dict[int, Failure]) -> list[ApplyOutcome]:
        """The outcomes of a batch the writer has committed."""
        found.update(writer.receive())
        return self._outcomes_of(batch, found)

    def _outcomes_of(self, batch: list[Change], found: dict[int, Failure]) -> list[ApplyOutcome]:
        """One outcome per change of a committed batch, *found* its failures by position."""
        return [
            ApplyOutcome(change) if i not in found else ApplyOutcome(change, self._error(change, *found[i]))
            for i, change in enumerate(batch)
        ]

    def writer_config(self) -> dict[str, Any]:
        """What a writer process needs to open this directory as this process has it."""
        indexer = self._store.indexer
        return {"path": str(self.path), "suffix": self.suffix, "schema_files": [str(p) for p in self._schema_files],
                "indexed": list(indexer.names) if indexer is not None else None}

    def write_batch(self, items: Sequence[tuple[int, Prepared]]) -> list[tuple[int, Failure]]:
        """Store prepared changes in one committed transaction (in this process,
        or as a writer process's work); the failures, by the position each
        item came with."""
        store = self._store
        failures: list[tuple[int, Failure]] = []
        with store.lock:
            self._check_open()
            self._parents.clear()
            try:
                store.begin()
                self._index_fresh()
                for i, item in items:
                    try:
                        self._write(item)
                    except (LdapFailure, ConfigError) as exc:
                        failures.append((i, failure_of(exc)))
                store.commit()
            except sqlite3.Error as exc:
                store.rollback()
                raise store.fail(exc, "applying changes") from exc
            except BaseException:
                store.rollback()
                raise
        return failures

    def _prepare(self, change: Change) -> Prepared:
        """What of *change* needs no stored entry, done: a new entry's names
        and values checked (raises LdapFailure or ConfigError as applying
        would). A writer process does the rest: the split balances the two."""
        if change.op is not ChangeOp.CREATE:
            return change
        key = dn_key(change.dn)
        self._within_suffix(key)
        rdn = leaf_rdn(change.dn)
        if rdn is None:
            raise LdapFailure("unwillingToPerform", "the root DSE cannot be written")
        attrs = entry_for_add(self._schema, rdn, change.attrs)
        return NewEntry(key, rdn, attrs, dumps(attrs), change.dn)

    def _write(self, item: Prepared) -> None:
        if isinstance(item, NewEntry):
            self._add(item)
        elif item.op is ChangeOp.DELETE:
            self._delete(item)
        elif item.op is ChangeOp.MOVE:
            self._move(item)
        else:
            self._modify(item)

    def _error(self, change: Change, code: str, detail: str, attribute: str | None) -> RecordError:
        """The error of one change, worded as the LDAP connector words slapd's answer."""
        target = f"{change.dn} to {change.new_dn}" if change.op is ChangeOp.MOVE else change.dn
        description = _RESULTS.get(code, code)
        return RecordError(
            f"{_VERBS[change.op]} {target} failed: {description}: {detail}", key=change.key, attribute=attribute
        )

    def _within_suffix(self, key: str) -> None:
        if not key.startswith(self._suffix_key):
            raise LdapFailure("unwillingToPerform", f"not within the directory suffix {self.suffix}")

    def _parent_dn(self, key: str, dn: str) -> str:
        """The stored DN of the parent of *key*; refuses a missing parent.

        Remembered for the rest of the batch (a batch of adds most often
        shares one parent), until a delete or a move may change it."""
        pkey = parent_key(key)
        parent = self._parents.get(pkey)
        if parent is None:
            parent = self._store.get_dn(pkey)
            if parent is None:
                raise LdapFailure("noSuchObject", f"parent entry {format_dn(parse_dn(dn)[1:])!r} does not exist")
            self._parents[pkey] = parent
        return parent

    def _add(self, new: NewEntry) -> None:
        key, attrs = new.key, new.attrs
        check_entry(self._schema, attrs, new.rdn)
        dn = f"{format_dn((new.rdn,))},{self._parent_dn(key, new.dn)}" if key != self._suffix_key else format_dn(parse_dn(new.dn))
        now = self._now()
        if not self._store.insert(Row(key, dn, entry_uuid(), now, now, attrs), new.text):
            if key == self._suffix_key and suffixes.replace_generated(self._store, self._schema, key, dn, attrs, now):
                self.suffix = dn  # the suffix entry as imported replaces the generated one
                self._parents.clear()
                return
            raise LdapFailure("alreadyExists", "an entry with this DN already exists")

    def _existing(self, dn: str) -> Row:
        row = self._store.get(dn_key(dn))
        if row is None:
            raise LdapFailure("noSuchObject", "the entry does not exist")
        return row

    def _modify(self, change: Change) -> None:
        row = self._existing(change.dn)
        if not change.mods:  # nothing to send: an LDAP client makes no request at all
            return
        before = _structural(self._schema, tuple(row.attrs.get("objectClass", ())))
        attrs = apply_mods(self._schema, row.attrs, change.mods)
        check_entry(self._schema, attrs, parse_dn(row.dn)[0], before)
        self._store.update(row.key, attrs, self._now(), row)

    def _delete(self, change: Change) -> None:
        key = dn_key(change.dn)
        if not self._store.exists(key):
            raise LdapFailure("noSuchObject", "the entry does not exist")
        if self._store.has_children(key):
            raise LdapFailure("notAllowedOnNonLeaf", "subordinate objects must be deleted first")
        self._store.delete(key)
        self._parents.clear()

    def _move(self, change: Change) -> None:
        if not change.new_dn:
            raise LdapFailure("protocolError", "a move needs the new DN")
        row = self._existing(change.dn)
        new_rdns = parse_dn(change.new_dn)
        new_key = dn_key(change.new_dn)
        if row.key == self._suffix_key:
            raise LdapFailure("unwillingToPerform", "the suffix entry cannot be moved")
        self._within_suffix(new_key)
        if new_key == self._suffix_key or not new_rdns:
            raise LdapFailure("alreadyExists", "an entry with the new DN already exists")
        if new_key != row.key and new_key.startswith(row.key):
            raise LdapFailure("unwillingToPerform", "an entry cannot be moved below itself")
        parent = self._parent_dn(new_key, change.new_dn)
        if new_key != row.key and self._store.exists(new_key):
            raise LdapFailure("alreadyExists", "an entry with the new DN already exists")
        before = _structural(self._schema, tuple(row.attrs.get("objectClass", ())))
        attrs = rename_attrs(self._schema, row.attrs, parse_dn(row.dn)[0], new_rdns[0], change.delete_old_rdn)
        if change.mods:
            attrs = apply_mods(self._schema, attrs, change.mods)
        check_entry(self._schema, attrs, new_rdns[0], before)
        self._store.move(row, new_key, f"{format_dn(new_rdns[:1])},{parent}", attrs, self._now())
        self._parents.clear()


@lru_cache(maxsize=256)
def _needed(schema: Schema, wanted: frozenset[str]) -> frozenset[str]:
    """The stored attributes a filter on *wanted* reads: each with its subtypes
    (``(name=x)`` tests ``cn`` and ``sn`` too); the others need not be looked at."""
    out: set[str] = set()
    for name in wanted:
        info = schema.attribute(name.split(";", 1)[0])
        out.update(schema.subtypes(info.name) if info else (name.split(";", 1)[0],))
    return frozenset(out)


def _values_of(lowered: dict[str, list[str]], name: str) -> list[str]:
    return lowered.get(name, [])


@lru_cache(maxsize=1024)
def _expanded(schema: Schema, classes: tuple[str, ...]) -> tuple[str, ...]:
    """The classes with their superiors and aliases: ``(objectClass=person)``
    matches an inetOrgPerson, as slapd's objectClass matching does."""
    chain = schema.chain(classes)
    return (*classes, *(n for oc in chain for n in oc.names))


@lru_cache(maxsize=1024)
def _structural(schema: Schema, classes: tuple[str, ...]) -> str | None:
    try:
        return structural_class(schema, classes).name
    except LdapFailure:
        return None


_TIMES = frozenset({"createtimestamp", "modifytimestamp"})


def _needs_times(view: _View, wanted: set[str]) -> bool:
    """Whether a search reads the entries' times: it returns them or its filter tests them."""
    return not _TIMES.isdisjoint(wanted) or not _TIMES.isdisjoint(name.lower() for name in view.operational)


class NewEntry(NamedTuple):
    """A new entry, its names and values checked against the schema; what is
    left (its object classes' rules, its parent, storing it) needs the file."""

    key: str
    rdn: RDN
    attrs: dict[str, list[str]]
    text: str  # the attributes' JSON, as stored
    dn: str  # as the change gives it

    def __reduce__(self) -> tuple[Any, ...]:
        """Sent to a writer process without *attrs*, which *text* holds: a few
        strings pickle in a fraction of the time a dict of lists takes."""
        return _received, (self.key, self.rdn, self.text, self.dn)


def _received(key: str, rdn: RDN, text: str, dn: str) -> NewEntry:
    return NewEntry(key, rdn, loads(text), text, dn)


Prepared = NewEntry | Change
Failure = tuple[str, str, str | None]
"""Why a change failed: the LDAP result name, the detail and the attribute."""


def failure_of(exc: LdapFailure | ConfigError) -> Failure:
    if isinstance(exc, LdapFailure):
        return exc.code, exc.detail, exc.attribute
    return "invalidDNSyntax", exc.message, None


def _batches(changes: Iterable[Change], size: int) -> Iterator[list[Change]]:
    it = iter(changes)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _is_everything(flt: Filter) -> bool:
    return isinstance(flt, Present) and flt.attribute.lower() == "objectclass"
