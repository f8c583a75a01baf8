"""SQLite storage of the embedded directory: one row per entry.

Each entry row carries a ``key``: its normalized RDNs from the suffix down,
each followed by ``SEP``. Every entry of a subtree then shares the subtree's
key as a prefix, so a subtree search is one index range scan, rows arrive
parents first, and a move rewrites the keys of a subtree with one UPDATE.
``parent`` (the parent's key) serves one-level searches and leaf checks.

The file is opened in WAL mode (readers never block the writer; several
processes may share it) with ``synchronous=NORMAL``; writes happen in
explicit transactions, so a crash leaves the last committed state.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from idsync.domain.dn import RDN, normalized_rdns, parse_dn, parse_dn_uncached
from idsync.errors import ConnectorError, TransientError

SEP = "\x01"  # never part of a normalized RDN: control characters are hex-escaped there
FORMAT = 1
PAGE = 1000

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
"""

# Every read returns key, dn, uuid, created, modified, attrs (+ has-children when asked).
_GET = "SELECT key, dn, uuid, created, modified, attrs FROM entries WHERE key = ?"
_BASE = {
    False: "SELECT key, dn, uuid, created, modified, attrs FROM entries e WHERE key = ?",
    True: "SELECT key, dn, uuid, created, modified, attrs, "
    "EXISTS(SELECT 1 FROM entries c WHERE c.parent = e.key) FROM entries e WHERE key = ?",
}
_SUBTREE = {
    (False, True): "SELECT key, dn, uuid, created, modified, attrs FROM entries e "
    "WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
    (False, False): "SELECT key, dn, uuid, created, modified, attrs FROM entries e "
    "WHERE key > ? AND key < ? ORDER BY key LIMIT ?",
    (True, True): "SELECT key, dn, uuid, created, modified, attrs, "
    "EXISTS(SELECT 1 FROM entries c WHERE c.parent = e.key) FROM entries e "
    "WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
    (True, False): "SELECT key, dn, uuid, created, modified, attrs, "
    "EXISTS(SELECT 1 FROM entries c WHERE c.parent = e.key) FROM entries e "
    "WHERE key > ? AND key < ? ORDER BY key LIMIT ?",
}
_CHILDREN = {
    False: "SELECT key, dn, uuid, created, modified, attrs FROM entries e "
    "WHERE parent = ? AND key > ? ORDER BY key LIMIT ?",
    True: "SELECT key, dn, uuid, created, modified, attrs, "
    "EXISTS(SELECT 1 FROM entries c WHERE c.parent = e.key) FROM entries e "
    "WHERE parent = ? AND key > ? ORDER BY key LIMIT ?",
}


def dn_key(dn: str) -> str:
    """The storage key of *dn* (raises ConfigError for an invalid DN).

    The key of the parent part is remembered: the entries written or read
    together most often share their parent, so only the leaf RDN is new."""
    first, sep, rest = dn.partition(",")
    if sep and rest.strip() and not _SPECIAL.search(first):
        leaf = normalized_rdns(first)
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

    @classmethod
    def load(cls, row: tuple[Any, ...]) -> Row:
        return cls(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))


_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(attrs: dict[str, list[str]]) -> str:
    """The JSON text of *attrs*. Binary values (read or imported as bytes that
    are not UTF-8, kept as lone surrogates) are written as ``\\udcxx``
    escapes, which SQLite can store and :func:`json.loads` turns back."""
    text = json.dumps(attrs, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii() and _SURROGATE.search(text):
        return json.dumps(attrs, ensure_ascii=True, separators=(",", ":"))
    return text


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
        except (sqlite3.Error, OSError) as exc:
            raise ConnectorError(f"cannot open the embedded directory {path}: {exc}") from exc
        self.closed = False

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
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def create_tables(self) -> None:
        """Create the tables of a new file (outside a transaction: the DDL commits)."""
        self.db.executescript(_DDL)
        if self.get_meta("format") is None:
            self.db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('format', ?)", (str(FORMAT),))
        found = self.get_meta("format")
        if found is not None and int(found) > FORMAT:
            raise ConnectorError(
                f"embedded directory {self.path} has format {found}, newer than this idsync ({FORMAT}); upgrade idsync"
            )

    def get_meta(self, name: str) -> str | None:
        found = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(found[0]) if found else None

    def set_meta(self, name: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

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

    def page(self, low: str, high: str, *, inclusive: bool, children: bool) -> list[tuple[Any, ...]]:
        """Up to PAGE rows with low <(=) key < high, in key order (the subtree scan)."""
        return self.db.execute(_SUBTREE[children, inclusive], (low, high, PAGE)).fetchall()

    def child_page(self, parent: str, after: str, *, children: bool) -> list[tuple[Any, ...]]:
        """Up to PAGE children of *parent* with key > after (the one-level scan)."""
        return self.db.execute(_CHILDREN[children], (parent, after, PAGE)).fetchall()

    def base_row(self, key: str, *, children: bool) -> list[tuple[Any, ...]]:
        return self.db.execute(_BASE[children], (key,)).fetchall()

    # -------------------------------------------------------- writes (inside a transaction)

    def insert(self, row: Row) -> bool:
        """Insert *row*; False when an entry with its key exists already."""
        try:
            self.db.execute(
                "INSERT INTO entries (key, parent, dn, uuid, created, modified, attrs) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.key, parent_key(row.key), row.dn, row.uuid, row.created, row.modified, dumps(row.attrs)),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def update(self, key: str, attrs: dict[str, list[str]], modified: str) -> None:
        self.db.execute("UPDATE entries SET attrs = ?, modified = ? WHERE key = ?", (dumps(attrs), modified, key))

    def delete(self, key: str) -> None:
        self.db.execute("DELETE FROM entries WHERE key = ?", (key,))

    def move(self, old: Row, new_key: str, new_dn: str, attrs: dict[str, list[str]], modified: str) -> None:
        """Rename *old* to *new_key*/*new_dn*, carrying its whole subtree along."""
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
