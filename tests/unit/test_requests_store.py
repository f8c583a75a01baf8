"""Requests as stored: plans, filters, one pending per collection, the hash-chained trail.

The tests are in a class so the PostgreSQL suite runs them unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from idsync.errors import StateConflictError
from idsync.store import Database
from idsync.store.chain import ZERO_HASH as GENESIS
from idsync.store.chain import content_of, row_hash
from idsync.store.collections_repo import CollectionRunRepository
from idsync.store.requests_repo import NewDecision, NewPlan, RequestRepository
from idsync.store.tables import request_decisions, user_roles, users
from tests.clock import Clock

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def a_request(db: Database, collection: str = "c", requester: str = "rita", clock: Clock | None = None) -> int:
    clock = clock or Clock()
    with db.session() as session:
        run_id = CollectionRunRepository(session, clock=clock).create(
            collection_id=None, collection_name=collection, trigger="manual", requested_by=requester
        )
        return RequestRepository(session, clock=clock).create(
            run_id=run_id, collection_name=collection, stores=["hr", "ldap"], kind="manual", reason="manual run",
            requested_by=requester, required_approvals=2, expires_at=clock() + timedelta(days=7),
            escalate_at=None, plans=[NewPlan("staff", None, "size=3", clock()), NewPlan("groups", None, None, clock())],
        )


class TestRequestRepository:
    def test_a_request_is_created_pending_with_its_plans(self, db: Database) -> None:
        request_id = a_request(db)
        with db.session() as session:
            repo = RequestRepository(session)
            row = repo.require(request_id)
            plans = repo.plans(request_id)
        assert row.state == "pending" and row.stores == ("hr", "ldap") and row.required_approvals == 2
        assert [(p.seq, p.job_name, p.source_fingerprint) for p in plans] == [(0, "staff", "size=3"), (1, "groups", None)]

    def test_a_second_pending_request_of_a_collection_is_refused_naming_the_first(self, db: Database) -> None:
        first = a_request(db)
        with pytest.raises(StateConflictError, match=f"request {first}"):
            a_request(db)
        a_request(db, collection="other")

    def test_lists_filter_by_state_requester_collection_and_time(self, db: Database) -> None:
        clock = Clock()
        one = a_request(db, "a", "rita", clock)
        clock.advance(3600)
        two = a_request(db, "b", "sam", clock)
        with db.session() as session:
            repo = RequestRepository(session)
            assert [r.id for r in repo.list()] == [two, one]
            assert [r.id for r in repo.list(requester="rita")] == [one]
            assert [r.id for r in repo.list(collection="b")] == [two]
            assert [r.id for r in repo.list(since=clock.now)] == [two]
            assert [r.id for r in repo.list(until=clock.now)] == [one]
            assert repo.list(states=["denied"]) == []
            assert [r.id for r in repo.list(ids=[one], limit=1)] == [one]

    def test_decisions_chain_over_the_whole_table_and_cache_the_state(self, db: Database) -> None:
        one, two = a_request(db, "a"), a_request(db, "b")
        with db.session() as session:
            repo = RequestRepository(session)
            repo.append(one, NewDecision("alice", "approve", T0, "fine", {"kinds": ["create"]}), "pending")
            repo.append(two, NewDecision("bob", "deny", T0 + timedelta(seconds=1), "no"), "denied", closed=True,
                        outcome="denied by bob: no")
        with db.session() as session:
            repo = RequestRepository(session)
            rows = repo.trail()
            assert repo.require(two).state == "denied" and repo.require(two).closed_at == T0 + timedelta(seconds=1)
            assert repo.require(two).outcome == "denied by bob: no"
            assert [r.actor for r in repo.trail(one)] == ["alice"]
        assert rows[0].prev_hash == GENESIS
        assert rows[1].prev_hash == rows[0].hash
        for row in rows:
            # What was read back hashes to what was stored: the chain is verifiable.
            assert row.hash == row_hash(row.prev_hash, content_of(request_decisions, {
            "request_id": row.request_id, "at": row.at, "actor": row.actor, "action": row.action,
            "comment": row.comment, "detail": row.detail,
        }))
        assert rows[0].detail == {"kinds": ["create"]}

    def test_a_repreview_replaces_the_plans(self, db: Database) -> None:
        request_id = a_request(db)
        later = T0 + timedelta(hours=2)
        with db.session() as session:
            RequestRepository(session).replace_plans(request_id, [NewPlan("staff", None, "size=4", later)])
        with db.session() as session:
            repo = RequestRepository(session)
            assert [(p.job_name, p.source_fingerprint) for p in repo.plans(request_id)] == [("staff", "size=4")]
            assert repo.require(request_id).plans_at == later

    def test_people_say_who_holds_the_approver_role(self, db: Database) -> None:
        with db.session() as session:
            for user_id, name, dn, disabled in ((1, "alice", None, False), (2, "bob", "UID=Bob,dc=example,dc=org", True)):
                session.execute(insert(users).values(
                    id=user_id, name=name, dn=dn, disabled=disabled, created_at=T0, updated_at=T0
                ))
            session.execute(insert(user_roles).values(user_id=2, role="approver", granted_by="x", granted_at=T0))
        with db.session() as session:
            people = {p.name: p for p in RequestRepository(session).people()}
        assert not people["alice"].approver
        assert people["bob"].approver and people["bob"].disabled and people["bob"].dn == "uid=bob,dc=example,dc=org"
