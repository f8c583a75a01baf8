"""The audit trail: append, read newest first, filter.

The tests are in a class so the PostgreSQL suite runs them unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from idsync.store import Database, list_entries, record

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


class TestAudit:
    def test_entries_come_back_newest_first_with_their_detail(self, db: Database) -> None:
        with db.session() as session:
            record(
                session, actor="ann", action="create", object_kind="job", object_name="staff",
                detail={"changed": ["source"], "count": 2}, clock=lambda: START,
            )
            record(
                session, actor="bob", action="approve", object_kind="request", object_name="17",
                clock=lambda: START + timedelta(minutes=5),
            )
        with db.session() as session:
            entries = list_entries(session)
        assert [(e.actor, e.action, e.object_kind, e.object_name) for e in entries] == [
            ("bob", "approve", "request", "17"),
            ("ann", "create", "job", "staff"),
        ]
        assert entries[1].detail == {"changed": ["source"], "count": 2}
        assert entries[0].detail == {}
        assert entries[0].at == START + timedelta(minutes=5)
        assert entries[0].id > entries[1].id

    def test_entries_are_filtered_by_kind_and_name_and_limited(self, db: Database) -> None:
        with db.session() as session:
            for i, (kind, name) in enumerate(
                [("job", "staff"), ("job", "alumni"), ("store", "staff"), ("job", "staff")]
            ):
                record(
                    session, actor="ann", action=f"a{i}", object_kind=kind, object_name=name,
                    clock=lambda i=i: START + timedelta(seconds=i),
                )
            assert [e.action for e in list_entries(session, object_kind="job")] == ["a3", "a1", "a0"]
            assert [e.action for e in list_entries(session, object_name="staff")] == ["a3", "a2", "a0"]
            assert [e.action for e in list_entries(session, object_kind="job", object_name="staff")] == ["a3", "a0"]
            assert [e.action for e in list_entries(session, limit=2)] == ["a3", "a2"]
            assert list_entries(session, object_kind="schedule") == []

    def test_entries_at_the_same_instant_keep_the_order_they_were_written(self, db: Database) -> None:
        with db.session() as session:
            for action in ("first", "second", "third"):
                record(
                    session, actor="ann", action=action, object_kind="job", object_name="staff",
                    clock=lambda: START,
                )
            assert [e.action for e in list_entries(session)] == ["third", "second", "first"]

    def test_the_default_clock_writes_the_current_utc_time(self, db: Database) -> None:
        before = datetime.now(UTC)
        with db.session() as session:
            record(session, actor="ann", action="delete", object_kind="job", object_name="staff")
            entry = list_entries(session)[0]
        assert before <= entry.at <= datetime.now(UTC)
