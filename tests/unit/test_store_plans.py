"""Stored plans: batches of changes in, pages of changes out.

The tests are in a class so the PostgreSQL suite runs them unchanged; the
throughput test stays SQLite-only (it measures the default database).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs
from idsync.domain.results import Counts
from idsync.errors import NotFoundError
from idsync.store import Database, PlanRepository
from idsync.store.tables import plan_changes
from tests.clock import Clock

EVERY_KIND = [
    Change(
        op=ChangeOp.CREATE,
        dn="uid=ann,ou=people,dc=example,dc=org",
        key="ann",
        attrs=Attrs({"objectClass": ["top", "inetOrgPerson"], "cn": ["Ann Example"], "sn": ["Example"]}),
    ),
    Change(
        op=ChangeOp.UPDATE,
        dn="uid=bob,ou=people,dc=example,dc=org",
        key="bob",
        mods=(
            Modification(ModOp.REPLACE, "mail", ("bob@new.org",), ("bob@old.org",)),
            Modification(ModOp.DELETE, "telephoneNumber", (), ("+1 555",)),
        ),
        anchor="8f2e4a9c-0000-4000-8000-000000000001",
    ),
    Change(
        op=ChangeOp.UPDATE,
        dn="cn=staff,ou=groups,dc=example,dc=org",
        key="staff",
        mods=(Modification(ModOp.ADD, "member", ("uid=ann,ou=people,dc=example,dc=org",), ()),),
    ),
    Change(op=ChangeOp.DELETE, dn="uid=old,ou=people,dc=example,dc=org", key="old"),
    Change(
        op=ChangeOp.DISABLE,
        dn="cn=Carl,ou=users,dc=corp,dc=example",
        key="carl",
        mods=(Modification(ModOp.REPLACE, "userAccountControl", ("514",), ("512",)),),
    ),
    Change(
        op=ChangeOp.MOVE,
        dn="uid=dan,ou=people,dc=example,dc=org",
        key="dan",
        new_dn="uid=dan,ou=leavers,dc=example,dc=org",
    ),
]


def numbered(count: int) -> list[Change]:
    return [
        Change(op=ChangeOp.UPDATE if i % 3 else ChangeOp.CREATE, dn=f"uid=u{i},dc=example,dc=org", key=f"u{i}")
        for i in range(count)
    ]


class TestPlanRepository:
    def test_a_new_plan_is_computing_and_empty(self, db: Database) -> None:
        clock = Clock()
        with db.session() as session:
            repo = PlanRepository(session, clock=clock)
            plan_id = repo.create(job_name="staff", job_id=None, created_by="ann")
            plan = repo.require(plan_id)
        assert (plan.state, plan.job_name, plan.job_id, plan.created_by) == ("computing", "staff", None, "ann")
        assert (plan.change_count, plan.counts, plan.applied_run_id, plan.error) == (0, Counts(), None, None)
        assert plan.created_at == clock.now

    def test_every_kind_of_change_comes_back_exactly(self, db: Database) -> None:
        with db.session() as session:
            repo = PlanRepository(session)
            plan_id = repo.create(job_name="staff", job_id=None)
            repo.add_changes(plan_id, EVERY_KIND, first_seq=0)
        with db.session() as session:
            page = PlanRepository(session).changes(plan_id)
        assert page == list(enumerate(EVERY_KIND))
        created = page[0][1]
        assert created.attrs is not None and list(created.attrs) == ["objectClass", "cn", "sn"]
        assert page[1][1].mods[0].before == ("bob@old.org",)

    def test_batches_are_counted_and_paged_by_sequence(self, db: Database) -> None:
        changes = numbered(2500)
        with db.session() as session:
            repo = PlanRepository(session)
            plan_id = repo.create(job_name="staff", job_id=None)
            for start in range(0, len(changes), 1000):
                repo.add_changes(plan_id, changes[start : start + 1000], first_seq=start)
            repo.add_changes(plan_id, [], first_seq=2500)
        with db.session() as session:
            repo = PlanRepository(session)
            assert repo.require(plan_id).change_count == 2500
            read: list[tuple[int, Change]] = []
            after = -1
            while page := repo.changes(plan_id, after_seq=after, limit=700):
                read.extend(page)
                after = page[-1][0]
        assert [seq for seq, _ in read] == list(range(2500))
        assert [change for _, change in read] == changes

    def test_changes_can_be_filtered_by_operation(self, db: Database) -> None:
        with db.session() as session:
            repo = PlanRepository(session)
            plan_id = repo.create(job_name="staff", job_id=None)
            repo.add_changes(plan_id, EVERY_KIND, first_seq=10)
            updates = repo.changes(plan_id, op=ChangeOp.UPDATE)
            after_first = repo.changes(plan_id, op=ChangeOp.UPDATE, after_seq=updates[0][0])
            moves = repo.changes(plan_id, op=ChangeOp.MOVE)
        assert [seq for seq, _ in updates] == [11, 12]
        assert [seq for seq, _ in after_first] == [12]
        assert moves == [(15, EVERY_KIND[5])]

    def test_plans_do_not_share_changes(self, db: Database) -> None:
        with db.session() as session:
            repo = PlanRepository(session)
            first = repo.create(job_name="staff", job_id=None)
            second = repo.create(job_name="staff", job_id=None)
            repo.add_changes(first, EVERY_KIND[:2], first_seq=0)
            repo.add_changes(second, EVERY_KIND[2:], first_seq=0)
            assert [c for _, c in repo.changes(first)] == EVERY_KIND[:2]
            assert [c for _, c in repo.changes(second)] == EVERY_KIND[2:]

    def test_a_sequence_number_is_used_once_per_plan(self, db: Database) -> None:
        with pytest.raises(IntegrityError), db.session() as session:
            repo = PlanRepository(session)
            plan_id = repo.create(job_name="staff", job_id=None)
            repo.add_changes(plan_id, EVERY_KIND[:2], first_seq=0)
            repo.add_changes(plan_id, EVERY_KIND[2:3], first_seq=1)

    def test_finish_records_state_counts_and_error(self, db: Database) -> None:
        with db.session() as session:
            repo = PlanRepository(session)
            ready = repo.create(job_name="staff", job_id=None)
            failed = repo.create(job_name="staff", job_id=None)
            repo.finish(ready, "ready", Counts(read=10, created=2, unchanged=8))
            repo.finish(failed, "failed", Counts(read=1), error="source hr: file not found")
            assert repo.require(ready).state == "ready"
            assert repo.require(ready).counts == Counts(read=10, created=2, unchanged=8)
            assert (repo.require(failed).state, repo.require(failed).error) == ("failed", "source hr: file not found")
            with pytest.raises(ValueError, match="unknown plan state 'done'"):
                repo.finish(ready, "done", Counts())

    def test_mark_applied_links_the_run(self, db: Database) -> None:
        with db.session() as session:
            repo = PlanRepository(session)
            plan_id = repo.create(job_name="staff", job_id=None)
            repo.finish(plan_id, "ready", Counts())
            repo.mark_applied(plan_id, run_id=42)
            plan = repo.require(plan_id)
        assert (plan.state, plan.applied_run_id) == ("applied", 42)

    def test_list_is_newest_first_with_a_job_filter_and_a_limit(self, db: Database) -> None:
        clock = Clock()
        with db.session() as session:
            repo = PlanRepository(session, clock=clock)
            ids = []
            for name in ("staff", "alumni", "staff"):
                clock.advance(30)
                ids.append(repo.create(job_name=name, job_id=None))
            assert [p.id for p in repo.list()] == ids[::-1]
            assert [p.id for p in repo.list(limit=1)] == [ids[2]]
            assert [p.id for p in repo.list(job_name="staff")] == [ids[2], ids[0]]

    def test_text_beyond_ascii_and_escaped_binary_values_come_back_exactly(self, db: Database) -> None:
        # A value read as binary carries lone surrogates (surrogateescape);
        # the stored JSON must keep it, and keep names' spelling and order.
        change = Change(
            op=ChangeOp.CREATE,
            dn="cn=Zoë Ørsted,ou=people,dc=example,dc=org",
            key="zoë",
            attrs=Attrs({"cn": ["Zoë Ørsted", "Zoë \"Z\" Ørsted"], "jpegPhoto": ["\udcff\udcd8binary"], "sn": ["Ørsted"]}),
        )
        with db.session() as session:
            repo = PlanRepository(session)
            plan_id = repo.create(job_name="staff", job_id=None)
            repo.add_changes(plan_id, [change], first_seq=0)
        with db.session() as session:
            [(seq, back)] = PlanRepository(session).changes(plan_id)
        assert (seq, back) == (0, change)
        assert back.attrs is not None and list(back.attrs) == ["cn", "jpegPhoto", "sn"]

    def test_a_missing_plan_is_not_found(self, db: Database) -> None:
        with db.session() as session:
            repo = PlanRepository(session)
            assert repo.get(7) is None
            assert repo.changes(7) == []
            with pytest.raises(NotFoundError, match=r"^no plan 7$") as raised:
                repo.require(7)
            assert raised.value.hint and "idsync" not in raised.value.hint
            with pytest.raises(NotFoundError):
                repo.mark_applied(7, run_id=1)

    def test_deleting_a_plan_deletes_its_changes(self, db: Database) -> None:
        with db.session() as session:
            repo = PlanRepository(session)
            plan_id = repo.create(job_name="staff", job_id=None)
            repo.add_changes(plan_id, EVERY_KIND, first_seq=0)
        with db.session() as session:
            assert PlanRepository(session).delete(plan_id) is True
            assert PlanRepository(session).delete(plan_id) is False
            left = session.execute(
                select(func.count()).select_from(plan_changes).where(plan_changes.c.plan_id == plan_id)
            ).scalar_one()
        assert left == 0


def test_thousands_of_changes_round_trip_in_batches(db: Database) -> None:
    """Five batches of a thousand: counted, and paged by sequence (sizes beyond: benchmarks/)."""
    changes = [
        Change(
            op=ChangeOp.UPDATE,
            dn=f"uid=user{i},ou=people,dc=example,dc=org",
            key=f"user{i}",
            mods=(Modification(ModOp.REPLACE, "mail", (f"user{i}@new.org",), (f"user{i}@old.org",)),),
        )
        for i in range(5_000)
    ]
    with db.session() as session:
        repo = PlanRepository(session)
        plan_id = repo.create(job_name="staff", job_id=None)
        for start in range(0, len(changes), 1000):
            repo.add_changes(plan_id, changes[start : start + 1000], first_seq=start)
    with db.session() as session:
        assert PlanRepository(session).require(plan_id).change_count == 5_000
        last = PlanRepository(session).changes(plan_id, after_seq=4_998)
    assert last == [(4_999, changes[-1])]
