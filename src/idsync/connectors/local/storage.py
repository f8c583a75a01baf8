"""SQLite storage of the embedded directory: one row per entry.

Each entry row carries a ``key``: its normalized RDNs from the suffix down,
each followed by ``SEP``. Every entry of a subtree then shares the subtree's
key as a prefix, so a subtree search is one index range scan, rows arrive
parents first, and a move rewrites the keys of a subtree with one UPDATE.
``parent`` (the parent's key) serves one-level searches and leaf checks.

Indexed attributes have rows in ``idx`` (see :mod:`.index`), a table
without rowids keyed by (attribute, value key, entry id): an equality or
presence lookup is one range of that key. An entry's index rows are worked
out from its attributes on every write and written, with the batch's other
index rows, by two ``executemany`` calls at its commit.

The file is opened in WAL mode (readers never block the writer; several
processes may share it) with ``synchronous=NORMAL``; writes happen in
explicit transactions, so a crash leaves the last committed state.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import orjson

from idsync.connectors.local.index import Indexer
from idsync.domain.dn import RDN, normalized_rdns, parse_dn, parse_dn_uncached
from idsync.errors import ConnectorError, TransientError

SEP = "\x01"  # never part of a normalized RDN: control characters are hex-escaped there
FORMAT = 2
"""1: entries only; 2: with the ``idx`` table (a file of format 1 is upgraded on open)."""
PAGE = 1000
CHECKPOINT_PAGES = 16384
"""Pages the WAL holds before they are copied into the file (SQLite's default
is 1,000). Each batch of a load writes its pages to the WAL, and the index
pages of scattered values (names) are among them in nearly every batch;
with checkpoints every 1,000 pages they were also copied into the file about
every other batch. With 16,384 (a WAL of 64 MB at most, cut back to that
size after a checkpoint), a load of 1,000,000 people wrote 8.8 KB per entry
instead of 12.9 KB, and W9L's time per entry went from 1.25 to 1.13 times
that of a load of 100,000 (docs/performance.md)."""

_DDL = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    parent TEXT NOT NULL,
    dn TEXT NOT NULL,
    uuid TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    attrs TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_parent ON entries (parent, key);
CREATE TABLE IF NOT EXISTS idx (
    attr TEXT NOT NULL,
    value TEXT NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (attr, value, id)
) WITHOUT ROWID;
"""
INDEXED = "indexed"
"""Meta entry: the attributes the ``idx`` rows are of (JSON list), as last rebuilt."""

_IDS_EQUAL = "SELECT id FROM idx WHERE attr = ? AND value = ?"
_IDS_PRESENT = "SELECT DISTINCT id FROM idx WHERE attr = ?"
_COUNT_EQUAL = "SELECT count(*) FROM (SELECT 1 FROM idx WHERE attr = ? AND value = ? LIMIT ?)"
_COUNT_PRESENT = "SELECT count(*) FROM (SELECT DISTINCT id FROM idx WHERE attr = ? LIMIT ?)"

# Every read returns key, dn, uuid, created, modified, attrs (+ has-children when asked).
_GET = "SELECT key, dn, uuid, created, modified, attrs, id FROM entries WHERE key = ?"


@cache
def _read(where: str, *, children: bool, times: bool) -> str:
    """The SELECT of the rows the scans return, *where* its condition.

    The times are NULL unless asked for: making their strings was a third of
    SQLite's time in a scan of 100,000 entries (0.14 s, 0.09 s without)."""
    times_ = "created, modified" if times else "NULL, NULL"
    has_children = ", EXISTS(SELECT 1 FROM entries c WHERE c.parent = e.key)" if children else ""
    return f"SELECT key, dn, uuid, {times_}, attrs{has_children} FROM entries e WHERE {where}"  # noqa: S608 - constants only


_BASE = "key = ?"
_SUBTREE = {True: "key >= ? AND key < ? ORDER BY key LIMIT ?", False: "key > ? AND key < ? ORDER BY key LIMIT ?"}
_CHILDREN = "parent = ? AND key > ? ORDER BY key LIMIT ?"
_ROWS_OF = "id IN (SELECT value FROM json_each(?)) ORDER BY key"  # the ids passed as one JSON array
_KEYS_OF = "SELECT key, id FROM entries WHERE id IN (SELECT value FROM json_each(?))"


def dn_key(dn: str) -> str:
    """The storage key of *dn* (raises ConfigError for an invalid DN).

    The key of the parent part is remembered: the entries written or read
    together most often share their parent, so only the leaf RDN is new."""
    first, sep, rest = dn.partition(",")
    if sep and rest.strip() and not _SPECIAL.search(first):
        leaf = _normalized_leaf(first)
        if len(leaf) == 1:
            return _key(rest) + leaf[0] + SEP
    return _key(dn)


_SPECIAL = re.compile(r'[\\"+#<>;\x00-\x1f\x7f]')  # an RDN the simple parse does not take


def leaf_rdn(dn: str) -> RDN | None:
    """The first RDN of *dn* (None for the empty DN), parsing no more of it than needed."""
    first, sep, rest = dn.partition(",")
    if sep and rest.strip() and not _SPECIAL.search(first):
        return parse_dn_uncached(first)[0]
    rdns = parse_dn(dn)
    return rdns[0] if rdns else None


_normalized_leaf = normalized_rdns.__wrapped__
"""The normalization without its cache, for leaf RDNs: each is met once, and
filling the cache with them only evicts what it is good for (parents)."""


@lru_cache(maxsize=1024)
def _key(dn: str) -> str:
    return "".join(r + SEP for r in reversed(normalized_rdns(dn)))


def parent_key(key: str) -> str:
    return key[: key.rfind(SEP, 0, len(key) - 1) + 1]


def subtree_end(key: str) -> str:
    """The smallest key greater than every key of the subtree of *key*."""
    return key[:-1] + chr(ord(SEP) + 1)


@dataclass(slots=True)
class Row:
    """One stored entry."""

    key: str
    dn: str
    uuid: str
    created: str
    modified: str
    attrs: dict[str, list[str]]
    id: int = 0  # the row's id once stored

    @classmethod
    def load(cls, row: tuple[Any, ...]) -> Row:
        return cls(row[0], row[1], row[2], row[3], row[4], loads(row[5]), row[6])


class _RandomBits:
    """Random bytes for entry UUIDs, read from the system 10 KB at a time:
    one ``os.urandom`` call per entry cost more than the rest of its UUID.
    Dropped in a forked child, so parent and child never share bytes."""

    SIZE = 10 * 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._buffer, self._at = b"", 0

    def take(self, count: int) -> bytes:
        with self._lock:
            at = self._at
            if at + count > len(self._buffer):
                self._buffer, at = os.urandom(self.SIZE), 0
            self._at = at + count
            return self._buffer[at : at + count]


_random_bits = _RandomBits()


def entry_uuid() -> str:
    """A new entry's ``entryUUID``: time-ordered (RFC 9562 version 7: the
    Unix time in milliseconds, then 74 random bits), as slapd's are
    time-based. Random ones (version 4) landed all over the file's unique
    index on them, and a load of 1,000,000 entries spent more time per
    entry than one of 100,000 (1.46 times in ``make bench --scale``);
    time-ordered ones are appended."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(_random_bits.take(10), "big")  # 80 bits, 74 of them used
    value = (
        (millis & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76  # version
        | ((rand >> 62) & 0xFFF) << 64
        | 0b10 << 62  # variant
        | rand & 0x3FFF_FFFF_FFFF_FFFF
    )
    text = f"{value:032x}"  # formatted here: uuid.UUID checks and converts what is known good
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def loads(text: str) -> dict[str, list[str]]:
    """The attributes stored as JSON *text* (orjson: a search of 100,000
    entries decodes them all). Text with ``\\udcxx`` escapes (binary values,
    see :func:`dumps`) is decoded by the standard library, which takes them."""
    try:
        found: dict[str, list[str]] = orjson.loads(text)
    except orjson.JSONDecodeError:
        found = json.loads(text)
    return found


def dumps(attrs: dict[str, list[str]]) -> str:
    """The JSON text of *attrs*. Binary values (read or imported as bytes that
    are not UTF-8, kept as lone surrogates) are written as ``\\udcxx``
    escapes, which SQLite can store and :func:`loads` turns back."""
    try:
        return orjson.dumps(attrs).decode()
    except orjson.JSONEncodeError:  # lone surrogates are not UTF-8
        return json.dumps(attrs, ensure_ascii=True, separators=(",", ":"))


class Storage:
    """The SQLite file: entry rows, guarded by one lock so threads may share it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA busy_timeout = 30000")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
            self.db.execute(f"PRAGMA journal_size_limit = {CHECKPOINT_PAGES * 4096}")
        except (sqlite3.Error, OSError) as exc:
            raise ConnectorError(f"cannot open the embedded directory {path}: {exc}") from exc
        self.closed = False
        self.indexer: Indexer | None = None
        # Index rows written at commit: (attr, value, id) -> True to add, False to remove (the last write wins).
        self._pending: dict[tuple[str, str, int], bool] = {}

    def fail(self, exc: sqlite3.Error, doing: str) -> ConnectorError:
        """The idsync error for a database error *exc* met while *doing*."""
        text = str(exc)
        if "locked" in text or "busy" in text:
            return TransientError(f"embedded directory {self.path} is busy ({doing}): {text}; try again")
        return ConnectorError(f"embedded directory {self.path}: {doing} failed: {text}")

    # -------------------------------------------------------- transactions

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self._pending:
            self._flush_index()
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        self._pending.clear()
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def _flush_index(self) -> None:
        pending, self._pending = self._pending, {}
        self.db.executemany("DELETE FROM idx WHERE attr = ? AND value = ? AND id = ?",
                            [k for k, add in pending.items() if not add])
        self.db.executemany("INSERT OR IGNORE INTO idx (attr, value, id) VALUES (?, ?, ?)",
                            [k for k, add in pending.items() if add])

    def _index(self, ident: int, old: dict[str, list[str]] | None, new: dict[str, list[str]] | None) -> None:
        """Queue the index rows of entry *ident* going from *old* to *new* attributes."""
        indexer = self.indexer
        if indexer is None or not indexer.names:
            return
        pending = self._pending
        if old is None and new is not None:  # a new entry: only rows to add
            for attr, value in indexer.rows(new):
                pending[attr, value, ident] = True
            return
        before = indexer.rows(old) if old is not None else set()
        after = indexer.rows(new) if new is not None else set()
        for attr, value in before - after:
            pending[attr, value, ident] = False
        for attr, value in after - before:
            pending[attr, value, ident] = True

    def _old(self, key: str) -> tuple[int, dict[str, list[str]]] | None:
        """The id and attributes stored at *key*, when indexes need them."""
        if self.indexer is None or not self.indexer.names:
            return None
        found = self.db.execute("SELECT id, attrs FROM entries WHERE key = ?", (key,)).fetchone()
        return (int(found[0]), loads(found[1])) if found else None

    def create_tables(self) -> None:
        """Create the tables of a new file, or those a file of an older format
        lacks (outside a transaction: the DDL commits). The format is marked
        current once the caller has filled them (:meth:`mark_current`)."""
        found = self._format()
        if found is not None and int(found) > FORMAT:
            raise ConnectorError(
                f"embedded directory {self.path} has format {found}, newer than this idsync ({FORMAT}); upgrade idsync"
            )
        self.db.executescript(_DDL)

    def _format(self) -> str | None:
        try:
            return self.get_meta("format")
        except sqlite3.OperationalError:  # a new file: no meta table yet
            return None

    def mark_current(self) -> None:
        """Record that the file has the current format (inside the caller's transaction)."""
        if self.get_meta("format") != str(FORMAT):
            self.set_meta("format", str(FORMAT))

    def get_meta(self, name: str) -> str | None:
        found = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(found[0]) if found else None

    def set_meta(self, name: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    # -------------------------------------------------------- indexes

    def indexed(self) -> tuple[str, ...] | None:
        """The attributes the stored index rows are of (None: never built)."""
        found = self.get_meta(INDEXED)
        return tuple(json.loads(found)) if found is not None else None

    def rebuild_index(self, indexer: Indexer) -> None:
        """Make the index rows those of *indexer*'s attributes (inside the caller's transaction)."""
        had = set(self.indexed() or ())
        wanted = set(indexer.names)
        for name in had - wanted:
            self.db.execute("DELETE FROM idx WHERE attr = ?", (name,))
        added = wanted - had
        if self.indexed() is None:
            self.db.execute("DELETE FROM idx")
            added = wanted
        if added:
            only = Indexer(indexer.schema, tuple(sorted(added)))
            last = -1
            while True:
                rows = self.db.execute("SELECT id, attrs FROM entries WHERE id > ? ORDER BY id LIMIT ?",
                                       (last, PAGE * 10)).fetchall()
                self.db.executemany(
                    "INSERT OR IGNORE INTO idx (attr, value, id) VALUES (?, ?, ?)",
                    [(attr, value, ident) for ident, text in rows for attr, value in only.rows(loads(text))],
                )
                if len(rows) < PAGE * 10:
                    break
                last = rows[-1][0]
        self.set_meta(INDEXED, json.dumps(list(indexer.names)))
        self.indexer = indexer

    def count_lookup(self, attr: str, value: str | None, cap: int) -> int:
        """How many entries *attr* = *value* (or *attr* present) finds, counting up to *cap*."""
        if value is None:
            return int(self.db.execute(_COUNT_PRESENT, (attr, cap)).fetchone()[0])
        return int(self.db.execute(_COUNT_EQUAL, (attr, value, cap)).fetchone()[0])

    def lookup(self, attr: str, value: str | None) -> list[int]:
        """The ids of the entries *attr* = *value* (or *attr* present) finds."""
        if value is None:
            return [r[0] for r in self.db.execute(_IDS_PRESENT, (attr,))]
        return [r[0] for r in self.db.execute(_IDS_EQUAL, (attr, value))]

    def count_scope(self, base: str, *, one: bool, limit: int) -> int:
        """How many entries are below *base* (its children only when *one*), counting up to *limit*."""
        if one:
            sql = "SELECT count(*) FROM (SELECT 1 FROM entries WHERE parent = ? LIMIT ?)"
            return int(self.db.execute(sql, (base, limit)).fetchone()[0])
        sql = "SELECT count(*) FROM (SELECT 1 FROM entries WHERE key >= ? AND key < ? LIMIT ?)"
        return int(self.db.execute(sql, (base, subtree_end(base), limit)).fetchone()[0])

    def keys_of(self, ids: list[int]) -> list[tuple[str, int]]:
        """(key, id) of the entries of *ids* that still exist."""
        return self.db.execute(_KEYS_OF, (json.dumps(ids),)).fetchall()

    def rows_of(self, ids: list[int], *, children: bool, times: bool = True) -> list[tuple[Any, ...]]:
        """The rows of *ids* as the scans return them, in key order."""
        return self.db.execute(_read(_ROWS_OF, children=children, times=times), (json.dumps(ids),)).fetchall()

    # -------------------------------------------------------- reads

    def get(self, key: str) -> Row | None:
        found = self.db.execute(_GET, (key,)).fetchone()
        return Row.load(found) if found else None

    def get_dn(self, key: str) -> str | None:
        found = self.db.execute("SELECT dn FROM entries WHERE key = ?", (key,)).fetchone()
        return str(found[0]) if found else None

    def exists(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None

    def has_children(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM entries WHERE parent = ? LIMIT 1", (key,)).fetchone() is not None

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def page(
        self, low: str, high: str, *, inclusive: bool, children: bool, times: bool = True
    ) -> list[tuple[Any, ...]]:
        """Up to PAGE rows with low <(=) key < high, in key order (the subtree scan);
        their times are None unless *times*."""
        sql = _read(_SUBTREE[inclusive], children=children, times=times)
        return self.db.execute(sql, (low, high, PAGE)).fetchall()

    def child_page(self, parent: str, after: str, *, children: bool, times: bool = True) -> list[tuple[Any, ...]]:
        """Up to PAGE children of *parent* with key > after (the one-level scan)."""
        return self.db.execute(_read(_CHILDREN, children=children, times=times), (parent, after, PAGE)).fetchall()

    def base_row(self, key: str, *, children: bool, times: bool = True) -> list[tuple[Any, ...]]:
        return self.db.execute(_read(_BASE, children=children, times=times), (key,)).fetchall()

    # -------------------------------------------------------- writes (inside a transaction)

    def insert(self, row: Row, text: str | None = None) -> bool:
        """Insert *row* (*text*: its attributes' JSON, when already made); False
        when an entry with its key exists already."""
        try:
            cursor = self.db.execute(
                "INSERT INTO entries (key, parent, dn, uuid, created, modified, attrs) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.key, parent_key(row.key), row.dn, row.uuid, row.created, row.modified,
                 dumps(row.attrs) if text is None else text),
            )
        except sqlite3.IntegrityError:
            return False
        row.id = int(cursor.lastrowid or 0)
        self._index(row.id, None, row.attrs)
        return True

    def update(self, key: str, attrs: dict[str, list[str]], modified: str, old_row: Row | None = None) -> None:
        """Store *attrs* as the entry's; *old_row*, the entry as read in this
        transaction, spares reading it again for its index rows."""
        old = (old_row.id, old_row.attrs) if old_row is not None and old_row.id else self._old(key)
        self.db.execute("UPDATE entries SET attrs = ?, modified = ? WHERE key = ?", (dumps(attrs), modified, key))
        if old is not None:
            self._index(old[0], old[1], attrs)

    def delete(self, key: str) -> None:
        old = self._old(key)
        self.db.execute("DELETE FROM entries WHERE key = ?", (key,))
        if old is not None:
            self._index(old[0], old[1], None)

    def move(self, old: Row, new_key: str, new_dn: str, attrs: dict[str, list[str]], modified: str) -> None:
        """Rename *old* to *new_key*/*new_dn*, carrying its whole subtree along."""
        if old.id:
            self._index(old.id, old.attrs, attrs)
        self.db.execute(
            "UPDATE entries SET key = ?, parent = ?, dn = ?, attrs = ?, modified = ? WHERE key = ?",
            (new_key, parent_key(new_key), new_dn, dumps(attrs), modified, old.key),
        )
        self.db.execute(
            "UPDATE entries SET key = :nk || substr(key, :ol + 1), parent = :nk || substr(parent, :ol + 1), "
            "dn = substr(dn, 1, length(dn) - :odl) || :nd WHERE key > :ok AND key < :end",
            {"nk": new_key, "ol": len(old.key), "odl": len(old.dn), "nd": new_dn,
             "ok": old.key, "end": subtree_end(old.key)},
        )

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                self.db.close()
