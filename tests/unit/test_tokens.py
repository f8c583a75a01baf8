"""API tokens: shown once, stored hashed, refused alike whatever is wrong with them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.errors import AuthError, NotFoundError, PermissionDeniedError, StateConflictError
from idsync.services import tokens, users
from idsync.services.workspace import Workspace
from idsync.store.tables import api_tokens
from tests.unit.test_users import fresh_workspace, with_admin


@pytest.fixture
def ws(tmp_path: Path, tmp_home: Path, migrated_sqlite: Path) -> Workspace:
    return fresh_workspace(tmp_path, migrated_sqlite)


def test_a_token_is_shown_once_and_only_its_hash_is_stored(ws: Workspace, tmp_path: Path) -> None:
    boss = with_admin(ws)
    made = tokens.create(boss, "ci")
    kind, prefix, secret = made.token.split("_", 2)
    assert kind == "idsync" and prefix == made.row.prefix and len(secret) >= 40
    with ws.db.session() as session:
        row = session.execute(select(api_tokens)).one()
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.encode() not in (tmp_path / "idsync.db").read_bytes()
    listed = tokens.list_tokens(boss)
    assert [(t.name, t.user_name, t.prefix) for t in listed] == [("ci", "boss", prefix)]
    assert secret not in repr(listed)


def test_a_token_acts_as_its_user_and_records_its_use(ws: Workspace) -> None:
    boss = with_admin(ws)
    users.add_user(boss, "audrey", roles=[Role.AUDITOR])
    made = tokens.create(boss, "reports", user="audrey")
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert tokens.authenticate_token(ws, made.token, clock=lambda: at) == Principal("audrey", "user")
    assert tokens.list_tokens(boss, user="audrey")[0].last_used_at == at


def test_every_bad_token_gets_the_same_answer(ws: Workspace) -> None:
    boss = with_admin(ws)
    users.add_user(boss, "olga", roles=[Role.OPERATOR])
    now = datetime(2030, 1, 1, tzinfo=UTC)
    good = tokens.create(boss, "good", user="olga", clock=lambda: now)
    expiring = tokens.create(boss, "short", user="olga", expires=timedelta(hours=1), clock=lambda: now)
    revoked = tokens.create(boss, "old", user="olga", clock=lambda: now)
    tokens.revoke(boss, "old", user="olga")
    prefix = good.row.prefix
    bad = [
        "", "idsync", "nonsense", f"idsync_{prefix}_", f"idsync_{prefix}_wrong-secret", "idsync_ffffffffffff_x",
        good.token.replace("idsync_", "other_"), revoked.token,
    ]
    for token in bad:
        with pytest.raises(AuthError) as refused:
            tokens.authenticate_token(ws, token, clock=lambda: now)
        assert refused.value.message == tokens.BAD_TOKEN
    assert tokens.authenticate_token(ws, expiring.token, clock=lambda: now + timedelta(minutes=59)).name == "olga"
    with pytest.raises(AuthError, match="not valid"):
        tokens.authenticate_token(ws, expiring.token, clock=lambda: now + timedelta(hours=1))
    users.set_disabled(boss, "olga", True)
    with pytest.raises(AuthError, match="not valid"):
        tokens.authenticate_token(ws, good.token, clock=lambda: now)


def test_users_manage_their_own_tokens_and_admins_anyones(ws: Workspace) -> None:
    boss = with_admin(ws)
    users.add_user(boss, "olga", roles=[Role.OPERATOR])
    users.add_user(boss, "ann", roles=[Role.APPROVER])
    olga = ws.acting_as(Principal("olga", "user"))
    tokens.create(olga, "mine")
    tokens.create(boss, "theirs", user="ann")
    with pytest.raises(PermissionDeniedError, match="may not create tokens for other users: that needs the role admin"):
        tokens.create(olga, "sneaky", user="ann")
    with pytest.raises(PermissionDeniedError, match="that needs the role admin"):
        tokens.list_tokens(olga, user="ann")
    with pytest.raises(PermissionDeniedError, match="that needs the role admin"):
        tokens.revoke(olga, "theirs", user="ann")
    with pytest.raises(PermissionDeniedError, match="that needs the role admin"):
        tokens.list_tokens(olga, every_user=True)
    assert [(t.user_name, t.name) for t in tokens.list_tokens(boss, every_user=True)] == [
        ("ann", "theirs"), ("olga", "mine"),
    ]
    with pytest.raises(StateConflictError, match="a token named 'mine' exists already"):
        tokens.create(olga, "mine")
    assert tokens.revoke(olga, "mine").revoked_at is not None
    with pytest.raises(StateConflictError, match="revoked already"):
        tokens.revoke(olga, "mine")
    with pytest.raises(NotFoundError, match="user 'olga' has no token 'nope'"):
        tokens.revoke(olga, "nope")


def test_token_changes_are_audited_without_the_secret(ws: Workspace) -> None:
    from idsync.store import audit

    boss = with_admin(ws)
    made = tokens.create(boss, "ci")
    tokens.revoke(boss, made.row.prefix)  # by prefix too
    with ws.db.session() as session:
        entries = audit.list_entries(session, object_kind="token")
    assert [(e.action, e.object_name) for e in reversed(entries)] == [("token.create", "boss/ci"), ("token.revoke", "boss/ci")]
    assert made.token.split("_", 2)[2] not in repr(entries)


def test_the_bootstrap_administrator_has_no_tokens_of_its_own(ws: Workspace) -> None:
    with pytest.raises(StateConflictError, match="acts as no user of idsync"):
        tokens.create(ws, "ci")
