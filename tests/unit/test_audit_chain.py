"""The hash chain of the audit log and the decision trail: appends link,
tampering is found, the database refuses UPDATE and DELETE.

Tampering is done as someone with direct access to the database would:
with the append-only triggers out of the way (dropped and put back on
SQLite; skipped in replica mode on PostgreSQL). The tests are in a class so
the PostgreSQL suite runs them unchanged.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from idsync.store import Database, record
from idsync.store.audit import record_many
from idsync.store.chain import ZERO_HASH, ChainReport, append, row_hash, verify
from idsync.store.tables import audit_log, chain_heads, request_decisions

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def write_entries(db: Database, count: int, *, first: int = 0) -> None:
    with db.session() as session:
        for n in range(first, first + count):
            record(
                session, actor=f"actor-{n}", action="update", object_kind="job", object_name="staff",
                detail={"changed": ["mapping"], "n": n}, clock=lambda n=n: START + timedelta(minutes=n),
            )


def check(db: Database, table: Any = audit_log, **options: Any) -> ChainReport:
    with db.session() as session:
        return verify(session, table, **options)


def tamper(db: Database, sql: str, **params: Any) -> None:
    """Run *sql* past the append-only triggers, as an attacker with database access could."""
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(sql), params)
            return
        triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
        for name, _ in triggers:
            conn.execute(text(f"DROP TRIGGER {name}"))
        conn.execute(text(sql), params)
        for _, ddl in triggers:
            conn.execute(text(ddl))


def stored_hash(db: Database, row_id: int) -> str:
    with db.session() as session:
        return str(session.execute(select(audit_log.c.hash).where(audit_log.c.id == row_id)).scalar_one())


def forged(db: Database, row_id: int, prev_hash: str, actor: str) -> dict[str, Any]:
    """A row a careful forger would write: linked to *prev_hash*, its own hash right."""
    content = {
        "at": START, "actor": actor, "action": "update", "object_kind": "job",
        "object_name": "staff", "detail": {},
    }
    return {
        "id": row_id, **content, "at": START.replace(tzinfo=None) if db.dialect == "sqlite" else START,
        "detail": "{}", "prev_hash": prev_hash, "hash": row_hash(prev_hash, content),
    }


INSERT_FORGED = (
    "INSERT INTO audit_log (id, at, actor, action, object_kind, object_name, detail, prev_hash, hash) "
    "VALUES (:id, :at, :actor, :action, :object_kind, :object_name, :detail, :prev_hash, :hash)"
)


class TestAuditChain:
    def test_an_untouched_trail_is_intact_and_its_head_is_the_last_hash(self, db: Database) -> None:
        write_entries(db, 3)
        report = check(db)
        assert report.intact and report.faults == ()
        assert (report.count, report.last_id) == (3, 3)
        assert report.head_hash == stored_hash(db, 3)
        with db.session() as session:
            rows = session.execute(select(audit_log).order_by(audit_log.c.id)).all()
            head = session.execute(select(chain_heads).where(chain_heads.c.table_name == "audit_log")).one()
        assert rows[0].prev_hash == ZERO_HASH
        assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
        assert (head.last_id, head.last_hash, head._mapping["count"]) == (3, rows[-1].hash, 3)

    def test_an_empty_trail_is_intact_with_the_zero_hash(self, db: Database) -> None:
        report = check(db)
        assert report.intact and (report.count, report.last_id, report.head_hash) == (0, None, ZERO_HASH)

    def test_the_database_refuses_update_and_delete_on_both_trails(self, db: Database) -> None:
        write_entries(db, 1)
        with db.session() as session:
            append(session, request_decisions, {
                "request_id": 1, "at": START, "actor": "ann", "action": "comment", "detail": {},
            })
        for table, statement in (
            ("audit_log", "UPDATE audit_log SET actor = 'mallory'"),
            ("audit_log", "DELETE FROM audit_log"),
            ("request_decisions", "UPDATE request_decisions SET comment = 'forged'"),
            ("request_decisions", "DELETE FROM request_decisions"),
        ):
            with pytest.raises(Exception) as refused, db.session() as session:
                session.execute(text(statement))
            assert f"{table} is append-only" in str(refused.value)
        assert check(db).intact and check(db, request_decisions).intact

    def test_an_edited_row_is_named(self, db: Database) -> None:
        write_entries(db, 3)
        tamper(db, "UPDATE audit_log SET actor = 'mallory' WHERE id = 2")
        report = check(db)
        assert [(f.row_id, f.kind, f.message) for f in report.faults] == [
            (2, "edited", "row 2 of audit_log was edited: its hash does not match its contents"),
        ]

    def test_an_edited_row_whose_hash_was_recomputed_breaks_the_next_link(self, db: Database) -> None:
        write_entries(db, 3)
        row = forged(db, 2, stored_hash(db, 1), "mallory")
        tamper(
            db, "UPDATE audit_log SET actor = :actor, at = :at, detail = :detail, hash = :hash WHERE id = 2",
            actor="mallory", at=row["at"], detail=row["detail"], hash=row["hash"],
        )
        assert [(f.row_id, f.kind) for f in check(db).faults] == [(3, "broken_link")]

    def test_a_row_deleted_in_the_middle_breaks_the_link_of_the_next(self, db: Database) -> None:
        write_entries(db, 3)
        tamper(db, "DELETE FROM audit_log WHERE id = 2")
        faults = check(db).faults
        assert [(f.row_id, f.kind) for f in faults] == [(3, "broken_link"), (None, "head")]
        assert faults[0].message == (
            "row 3 of audit_log does not follow row 1: "
            "a row between them was deleted or inserted, or one before it rewritten"
        )
        assert faults[1].message == "audit_log holds 2 rows up to row 3, but its head says 3 up to row 3: rows were deleted"

    def test_the_first_row_deleted_is_found(self, db: Database) -> None:
        write_entries(db, 2)
        tamper(db, "DELETE FROM audit_log WHERE id = 1")
        faults = check(db).faults
        assert faults[0].message.startswith("row 2 of audit_log does not follow the start of the trail: ")

    def test_rows_deleted_from_the_end_are_found_by_the_head(self, db: Database) -> None:
        write_entries(db, 4)
        tamper(db, "DELETE FROM audit_log WHERE id >= 3")
        assert [(f.row_id, f.kind, f.message) for f in check(db).faults] == [
            (None, "head", "audit_log holds 2 rows up to row 2, but its head says 4 up to row 4: rows were deleted"),
        ]

    def test_an_append_after_a_deleted_end_does_not_hide_it(self, db: Database) -> None:
        write_entries(db, 3)
        tamper(db, "DELETE FROM audit_log WHERE id = 3")
        write_entries(db, 1, first=3)
        assert [f.kind for f in check(db).faults] == ["head"]

    def test_a_forged_row_inserted_in_the_middle_is_found(self, db: Database) -> None:
        write_entries(db, 3)
        # Make room after row 1, then slip in a row that links to it correctly.
        tamper(db, "UPDATE audit_log SET id = id + 10 WHERE id >= 2")
        tamper(db, "UPDATE audit_log SET id = id - 9 WHERE id >= 12")
        tamper(db, INSERT_FORGED, **forged(db, 2, stored_hash(db, 1), "mallory"))
        faults = check(db).faults
        assert [(f.row_id, f.kind) for f in faults] == [(3, "broken_link"), (None, "head")]
        assert faults[0].message.startswith("row 3 of audit_log does not follow row 2: ")
        assert faults[1].message.endswith("rows were added outside the chain, or the head changed")

    def test_a_forged_row_added_at_the_end_without_the_head_is_found(self, db: Database) -> None:
        write_entries(db, 2)
        tamper(db, INSERT_FORGED, **forged(db, 3, stored_hash(db, 2), "mallory"))
        assert [(f.row_id, f.kind) for f in check(db).faults] == [(None, "head")]

    def test_a_whole_rewrite_is_caught_by_a_head_written_down_before(self, db: Database) -> None:
        """What no chain can see by itself: every row after some point and the
        head rewritten together. A head hash kept elsewhere catches it."""
        write_entries(db, 3)
        written_down = check(db).head_hash
        assert check(db, look_for={written_down}).found == {written_down}
        prev = stored_hash(db, 1)
        for row_id in (2, 3):
            row = forged(db, row_id, prev, "mallory")
            tamper(
                db, "UPDATE audit_log SET actor = 'mallory', at = :at, detail = '{}', prev_hash = :p, hash = :h WHERE id = :id",
                at=row["at"], p=prev, h=row["hash"], id=row_id,
            )
            prev = row["hash"]
        tamper(db, "UPDATE chain_heads SET last_hash = :h WHERE table_name = 'audit_log'", h=prev)
        report = check(db, look_for={written_down})
        assert report.intact
        assert report.found == frozenset()

    def test_faults_are_found_on_every_page(self, db: Database) -> None:
        write_entries(db, 7)
        tamper(db, "UPDATE audit_log SET object_name = 'alumni' WHERE id IN (2, 6)")
        report = check(db, page=2)
        assert report.count == 7
        assert [(f.row_id, f.kind) for f in report.faults] == [(2, "edited"), (6, "edited")]

    def test_a_decision_appended_without_a_comment_is_hashed_with_the_default(self, db: Database) -> None:
        with db.session() as session:
            for n in range(2):
                append(session, request_decisions, {
                    "request_id": 7, "at": START, "actor": "ann", "action": "approve",
                    "detail": {"only": ("create", "update"), "n": n},
                })
        report = check(db, request_decisions)
        assert report.intact and report.count == 2
        with db.session() as session:
            comments = session.execute(select(request_decisions.c.comment)).scalars().all()
        assert comments == ["", ""]

    def test_appends_from_several_threads_make_one_chain(self, db: Database) -> None:
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for i in range(10):
                    with db.session() as session:
                        record(session, actor=f"writer-{n}", action=f"a{i}", object_kind="job", object_name="staff")
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        report = check(db)
        assert report.intact and report.count == 30

    def test_entries_appended_at_once_link_in_order_after_single_ones(self, db: Database) -> None:
        write_entries(db, 2)
        with db.session() as session:
            ids = record_many(session, [
                {"at": START + timedelta(hours=1, minutes=n), "actor": "scheduler", "action": "run.start",
                 "object_kind": "collection", "object_name": f"c{n}", "detail": {"run": n}}
                for n in range(5)
            ])
        write_entries(db, 1, first=9)
        assert ids == sorted(ids) and len(set(ids)) == 5
        report = check(db)
        assert report.intact and report.count == 8 and report.last_id == ids[-1] + 1
        with db.session() as session:
            rows = session.execute(select(audit_log).order_by(audit_log.c.id)).all()
            head = session.execute(select(chain_heads).where(chain_heads.c.table_name == "audit_log")).one()
        assert [r.object_name for r in rows[2:7]] == [f"c{n}" for n in range(5)]
        assert [r.id for r in rows[2:7]] == ids
        assert all(after.prev_hash == before.hash for before, after in itertools.pairwise(rows))
        assert head._mapping["count"] == 8 and head._mapping["last_hash"] == rows[-1].hash

    def test_nothing_appended_at_once_leaves_the_trail_as_it_was(self, db: Database) -> None:
        write_entries(db, 1)
        with db.session() as session:
            assert record_many(session, []) == []
        assert check(db).count == 1

    def test_batches_from_several_threads_make_one_chain(self, db: Database) -> None:
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for i in range(5):
                    with db.session() as session:
                        record_many(session, [
                            {"at": START, "actor": f"writer-{n}", "action": f"a{i}", "object_kind": "job",
                             "object_name": f"staff-{k}"}
                            for k in range(4)
                        ])
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        report = check(db)
        assert report.intact and report.count == 60


# ---------------------------------------------------------------- the hash itself, no database


def test_the_hash_is_of_canonical_json_after_the_previous_hash() -> None:
    import hashlib

    content = {"b": 1, "a": {"y": [1, 2], "x": "é"}, "at": START}
    expected = '{"a":{"x":"\\u00e9","y":[1,2]},"at":"2024-03-01T09:00:00.000000+00:00","b":1}'
    assert row_hash(ZERO_HASH, content) == hashlib.sha256((ZERO_HASH + expected).encode()).hexdigest()


def test_an_instant_hashes_the_same_in_any_time_zone() -> None:
    paris = START.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert row_hash(ZERO_HASH, {"at": paris}) == row_hash(ZERO_HASH, {"at": START})


def test_a_naive_instant_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        row_hash(ZERO_HASH, {"at": datetime(2024, 1, 1)})


def test_the_previous_hash_and_every_column_count() -> None:
    base = row_hash(ZERO_HASH, {"actor": "ann", "n": 1})
    assert row_hash("1" * 64, {"actor": "ann", "n": 1}) != base
    assert row_hash(ZERO_HASH, {"actor": "ann", "n": 2}) != base
    assert row_hash(ZERO_HASH, {"actor": "ann", "n": 1, "x": None}) != base
