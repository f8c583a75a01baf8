"""A hash chain over an append-only table: each row holds the hash of the one before it.

A chained table has the columns ``id``, ``prev_hash`` and ``hash``
(64 hexadecimal characters each) besides its own. A row's hash is the
SHA-256 of the previous row's hash followed by the canonical JSON of the
row's other columns (:func:`row_hash`): editing a row changes its hash,
and removing or inserting a row breaks the link of the row after it. The
table's head — its last row, that row's hash and the number of rows — is
kept in ``chain_heads`` in the same transaction as each row, so removing
rows from the end is seen too. What no chain can see is a rewrite of every
row after some point together with the head: for that, write the head hash
down somewhere else, and check later that it is still in the chain
(``look_for`` of :func:`verify`).

Writers are serialised, so two appends never link to the same row:

- on PostgreSQL by a transaction-scoped advisory lock per table, taken
  before the head is read (read committed: the read after the lock sees
  every append committed before it);
- on SQLite by the database's one write lock: :func:`append` first writes
  its table's row of ``chain_heads``, which takes that lock (waiting up to
  the busy timeout of :mod:`idsync.store.db`), and reads the head only
  then. The driver opens a transaction at the first write, not at a read,
  so the head read sees every append committed before it; a caller that
  read in the same transaction before appending may instead get "database
  is locked", a transient error, when another append committed in between.

:func:`canonical` and :func:`row_hash` are the contract of the stored
hashes: migration 0008 imports them to hash the rows it backfills, so
changing them is changing every stored hash (make a new revision hold a
frozen copy first).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import JSON, Row, Table, insert, select, text, update
from sqlalchemy.orm import Session

from idsync.store.tables import chain_heads

ZERO_HASH = "0" * 64
"""The ``prev_hash`` of a table's first row."""

CHAIN_COLUMNS = frozenset({"id", "prev_hash", "hash"})
"""The columns the chain adds to a table; every other column is hashed."""

PAGE = 500
"""Rows read at once by :func:`verify`."""

FaultKind = Literal["edited", "broken_link", "head"]


# ------------------------------------------------------------------ hashing


def canonical(content: Mapping[str, Any]) -> str:
    """*content* as canonical JSON: sorted keys, no whitespace, ASCII only,
    datetimes as ISO-8601 in UTC with microseconds."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} cannot be hashed: give it a time zone")
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    raise TypeError(f"{type(value).__name__} value {value!r} cannot be hashed")


def row_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    """The hash of a row holding *content* (its columns but id, prev_hash and hash)
    after a row whose hash is *prev_hash*."""
    return hashlib.sha256((prev_hash + canonical(content)).encode("ascii")).hexdigest()


def content_of(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed columns of *table* from *values*, as the row will hold them.

    A column left out is the value the database gives it: NULL when it may
    be NULL, else its literal server default; without either it must be given.
    """
    unknown = set(values) - {c.name for c in table.columns} - CHAIN_COLUMNS
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(sorted(unknown))}")
    content: dict[str, Any] = {}
    for column in table.columns:
        if column.name in CHAIN_COLUMNS:
            continue
        if column.name in values:
            value = values[column.name]
            # As the database gives it back: tuples become lists, keys strings.
            content[column.name] = json.loads(json.dumps(value)) if isinstance(column.type, JSON) else value
        elif column.server_default is not None and isinstance(getattr(column.server_default, "arg", None), str):
            content[column.name] = column.server_default.arg  # type: ignore[attr-defined]
        elif column.nullable:
            content[column.name] = None
        else:
            raise ValueError(f"a row of {table.name} needs a value for {column.name}")
    return content


# ------------------------------------------------------------------ appending


def lock_key(table_name: str) -> int:
    """The PostgreSQL advisory lock serialising the appends to *table_name*."""
    return zlib.crc32(f"idsync chain {table_name}".encode())


def append(session: Session, table: Table, values: Mapping[str, Any]) -> int:
    """Insert a row of *values* into the chained *table*, linked to its last
    row, and move the table's head to it; the new row's id."""
    return append_many(session, table, [values])[0]


def append_many(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert a row for each of *rows* into the chained *table*, in order,
    each linked to the one before, and move the head to the last; their ids.

    One lock, one read of the head and one move of it for them all: a
    scheduler recording a minute's runs at once does not queue for the
    chain once per run. On PostgreSQL the ids are drawn from the table's
    sequence under the lock and given in ascending order, so the chain's
    order (by id) is the order of *rows*, in one INSERT."""
    if not rows:
        return []
    contents = [content_of(table, values) for values in rows]
    _take_write_lock(session, table.name)
    last = session.execute(select(table.c.hash).order_by(table.c.id.desc()).limit(1)).scalar_one_or_none()
    prev_hash = last if last is not None else ZERO_HASH
    linked: list[dict[str, Any]] = []
    for content in contents:
        digest = row_hash(prev_hash, content)
        linked.append({**content, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    ids = _next_ids(session, table, len(linked))
    if ids is None:  # SQLite: one writer at a time, ids ascend insert by insert
        ids = []
        for row in linked:
            result = session.execute(insert(table).values(**row))
            ids.append(int(result.inserted_primary_key[0]))  # type: ignore[attr-defined]
    else:
        session.execute(insert(table), [{**row, "id": row_id} for row, row_id in zip(linked, ids, strict=True)])
    moved = session.execute(
        update(chain_heads)
        .where(chain_heads.c.table_name == table.name)
        .values(last_id=ids[-1], last_hash=prev_hash, count=chain_heads.c.count + len(ids))
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        session.execute(
            insert(chain_heads).values(table_name=table.name, last_id=ids[-1], last_hash=prev_hash, count=len(ids))
        )
    return ids


def _next_ids(session: Session, table: Table, count: int) -> list[int] | None:
    """*count* ids for new rows of *table* drawn from its sequence, ascending
    (PostgreSQL, under the chain's lock: every id an earlier writer drew is
    lower); None on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    drawn = session.execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
        {"table": table.name, "count": count},
    ).scalars()
    return sorted(int(value) for value in drawn)


def _take_write_lock(session: Session, table_name: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(table_name)})
    else:
        # A write, even of nothing, takes SQLite's write lock for the transaction.
        session.execute(
            update(chain_heads).where(chain_heads.c.table_name == table_name).values(count=chain_heads.c.count)
        )


# ------------------------------------------------------------------ verifying


@dataclass(frozen=True)
class ChainFault:
    """One thing wrong with a chained table: which row (None for the head), and what."""

    table: str
    row_id: int | None
    kind: FaultKind
    message: str


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify` found in one table.

    ``head_hash`` is the hash of the last row (:data:`ZERO_HASH` when the
    table is empty): written down elsewhere, it lets a later check prove
    that nothing before it was rewritten. ``found`` holds those of the
    hashes looked for that some row still has.
    """

    table: str
    count: int
    last_id: int | None
    head_hash: str
    faults: tuple[ChainFault, ...] = ()
    found: frozenset[str] = field(default_factory=frozenset)

    @property
    def intact(self) -> bool:
        return not self.faults


def verify(session: Session, table: Table, *, look_for: Collection[str] = (), page: int = PAGE) -> ChainReport:
    """Walk *table* in id order, *page* rows at a time, and report every fault.

    Call it first thing in a fresh session (then again for other tables):
    it reads one snapshot of the database (repeatable read on PostgreSQL,
    one read transaction on SQLite), so appends committed meanwhile are not
    taken for faults.
    """
    _read_snapshot(session)
    name = table.name
    head = session.execute(select(chain_heads).where(chain_heads.c.table_name == name)).one_or_none()
    faults: list[ChainFault] = []
    wanted = set(look_for)
    found: set[str] = set()
    count, last_id, prev_hash = 0, None, ZERO_HASH
    for row in _rows(session, table, page):
        content = {c.name: row._mapping[c.name] for c in table.columns if c.name not in CHAIN_COLUMNS}
        if row.prev_hash != prev_hash:
            before = f"row {last_id}" if last_id is not None else "the start of the trail"
            faults.append(ChainFault(name, row.id, "broken_link", (
                f"row {row.id} of {name} does not follow {before}: "
                "a row between them was deleted or inserted, or one before it rewritten"
            )))
        if row_hash(row.prev_hash, content) != row.hash:
            faults.append(ChainFault(name, row.id, "edited", (
                f"row {row.id} of {name} was edited: its hash does not match its contents"
            )))
        if row.hash in wanted:
            found.add(row.hash)
        count, last_id, prev_hash = count + 1, row.id, row.hash
    fault = _head_fault(name, head, count, last_id, prev_hash)
    if fault is not None:
        faults.append(fault)
    return ChainReport(name, count, last_id, prev_hash, tuple(faults), frozenset(found))


def _read_snapshot(session: Session) -> None:
    if session.info.get("chain_snapshot"):
        return  # several tables checked in one snapshot
    session.info["chain_snapshot"] = True
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    elif connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            # The driver opens no transaction for reads: without one, each page
            # would see the database as it is when that page is read.
            connection.exec_driver_sql("BEGIN")


def _rows(session: Session, table: Table, page: int) -> Iterator[Row[Any]]:
    after: int | None = None
    while True:
        query = select(table).order_by(table.c.id).limit(page)
        if after is not None:
            query = query.where(table.c.id > after)
        rows = session.execute(query).all()
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].id


def _head_fault(name: str, head: Row[Any] | None, count: int, last_id: int | None, last_hash: str) -> ChainFault | None:
    if head is None:
        if count == 0:
            return None
        return ChainFault(name, None, "head", f"{name} has {count} rows but no head: its row of chain_heads was deleted")
    # By name: a row is a tuple, whose own count() a column called count would hide.
    said_count, said_id, said_hash = head._mapping["count"], head._mapping["last_id"], head._mapping["last_hash"]
    if (said_count, said_hash) == (count, last_hash) and (said_id or None) == last_id:
        return None
    found = f"{name} holds {count} rows up to row {last_id}" if last_id is not None else f"{name} holds no rows"
    said = f"its head says {said_count} up to row {said_id}"
    if said_count > count or (last_id is not None and said_id > last_id):
        return ChainFault(name, None, "head", f"{found}, but {said}: rows were deleted")
    return ChainFault(name, None, "head", f"{found}, but {said}: rows were added outside the chain, or the head changed")
