"""The store on a real PostgreSQL: migrations, and every repository test again.

``IDSYNC_TEST_POSTGRES_URL`` names the server (for example
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). The session creates a
database of its own on it and drops it afterwards, so runs never see each
other's rows. Without the variable the tests are skipped, except in CI
(``CI=true``), where a skipped PostgreSQL suite would hide a broken setup and
fails instead.

The repository test classes of the SQLite suite are imported below: pytest
collects them here too, where the ``db`` fixture is the PostgreSQL one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from idsync.errors import AuthError, ConfigError, TransientError
from idsync.store import Database
from idsync.store.tables import metadata
from tests.integration.test_store_first_start import start_together
from tests.unit.test_audit_chain import TestAuditChain as TestAuditChainOnPostgres
from tests.unit.test_store_audit import TestAudit as TestAuditOnPostgres
from tests.unit.test_store_db import SHIPPED_HEAD
from tests.unit.test_store_definitions import (
    TestDefinitionRepository as TestDefinitionRepositoryOnPostgres,
)
from tests.unit.test_store_plan_claims import TestOneRunPerJob as TestOneRunPerJobOnPostgres
from tests.unit.test_store_plan_claims import TestPlanClaims as TestPlanClaimsOnPostgres
from tests.unit.test_store_plan_leases import TestPlanLeases as TestPlanLeasesOnPostgres
from tests.unit.test_store_plans import TestPlanRepository as TestPlanRepositoryOnPostgres
from tests.unit.test_store_runs import TestRunRepository as TestRunRepositoryOnPostgres

__all__ = [
    "TestAuditChainOnPostgres",
    "TestAuditOnPostgres",
    "TestDefinitionRepositoryOnPostgres",
    "TestOneRunPerJobOnPostgres",
    "TestPlanClaimsOnPostgres",
    "TestPlanLeasesOnPostgres",
    "TestPlanRepositoryOnPostgres",
    "TestRunRepositoryOnPostgres",
]

pytestmark = pytest.mark.postgres

URL_VARIABLE = "IDSYNC_TEST_POSTGRES_URL"


def server_url() -> str:
    url = os.environ.get(URL_VARIABLE, "")
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"{URL_VARIABLE} is not set: CI must run the PostgreSQL tests")
    pytest.skip(f"{URL_VARIABLE} is not set")


class Server:
    """Creates and drops databases on the PostgreSQL server under test."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT")

    def create(self) -> str:
        name = f"idsync_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    found = Server(server_url())
    yield found
    found.admin.dispose()


@pytest.fixture(scope="session")
def pg_url(server: Server) -> Iterator[str]:
    url = server.create()
    yield url
    server.drop(url)


@pytest.fixture(scope="session")
def migrated(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    assert database.current_revision() is None
    database.ensure_schema()
    yield database
    database.dispose()


@pytest.fixture
def db(migrated: Database) -> Database:
    """The session's database, emptied before each test (ids restart at 1).

    The audit trails refuse TRUNCATE by trigger: replica mode, open to
    superusers only, skips triggers for this one transaction."""
    names = ", ".join(table.name for table in metadata.sorted_tables)
    with migrated.engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return migrated


@pytest.fixture
def fresh(server: Server) -> Iterator[str]:
    """Another empty database, for tests of first starts."""
    url = server.create()
    yield url
    server.drop(url)


def test_the_session_database_is_at_head(migrated: Database) -> None:
    assert migrated.current_revision() == migrated.head_revision() == SHIPPED_HEAD
    assert migrated.dialect == "postgresql"


def test_upgrade_is_idempotent(migrated: Database) -> None:
    migrated.upgrade()
    migrated.ensure_schema()
    assert migrated.current_revision() == migrated.head_revision()


def test_models_and_migrations_agree(migrated: Database) -> None:
    with migrated.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_timestamps_are_stored_with_time_zone(migrated: Database) -> None:
    with migrated.engine.connect() as conn:
        columns = {c["name"]: c for c in inspect(conn).get_columns("runs")}
    assert columns["created_at"]["type"].timezone is True


def test_foreign_keys_cascade_and_set_null(migrated: Database) -> None:
    with migrated.engine.connect() as conn:
        inspector = inspect(conn)
        rules = {
            (table, fk["referred_table"], tuple(fk["constrained_columns"])): fk["options"].get("ondelete")
            for table in ("runs", "plans", "run_errors", "run_logs", "plan_changes")
            for fk in inspector.get_foreign_keys(table)
        }
    assert rules == {
        ("runs", "jobs", ("job_id",)): "SET NULL",
        ("runs", "plans", ("plan_id",)): "SET NULL",
        ("runs", "collections", ("collection_id",)): "SET NULL",
        ("runs", "runs", ("parent_run_id",)): "CASCADE",
        ("runs", "schedule_occurrences", ("occurrence_id",)): "SET NULL",
        ("plans", "jobs", ("job_id",)): "SET NULL",
        ("run_errors", "runs", ("run_id",)): "CASCADE",
        ("run_logs", "runs", ("run_id",)): "CASCADE",
        ("plan_changes", "plans", ("plan_id",)): "CASCADE",
    }


def test_an_empty_database_is_migrated_on_first_start(fresh: str) -> None:
    database = Database(fresh)
    assert database.current_revision() is None
    database.ensure_schema()
    with database.engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
    database.dispose()
    assert names >= set(metadata.tables)


def test_concurrent_first_starts_migrate_once(fresh: str, tmp_path: Path) -> None:
    """Separate processes, as several nodes (or a CLI beside the server) would be."""
    assert start_together(fresh, tmp_path / "start") == [("", 0)] * 4
    database = Database(fresh)
    assert database.current_revision() == SHIPPED_HEAD
    database.dispose()


# ---------------------------------------------------------------- failures, as one line


def test_a_database_that_does_not_exist_or_a_refused_user_are_not_transient(server: Server) -> None:
    missing = Database(server.url.set(database="no_such_idsync_database").render_as_string(hide_password=False))
    with pytest.raises(ConfigError, match=r"has no database 'no_such_idsync_database'$") as absent:
        missing.current_revision()
    assert absent.value.hint
    missing.dispose()
    stranger = Database(
        server.url.set(username="no_such_idsync_user", password="pw-42").render_as_string(hide_password=False)
    )
    with pytest.raises(AuthError, match="refused the credentials of user 'no_such_idsync_user'") as refused:
        stranger.current_revision()
    assert "pw-42" not in f"{refused.value.message} {refused.value.hint}"
    stranger.dispose()


def test_a_connection_lost_mid_transaction_is_transient(server: Server, db: Database) -> None:
    with pytest.raises(TransientError, match=r"^lost the connection to PostgreSQL at [^:]+:\d+: ") as caught, db.session() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with server.admin.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        session.execute(text("SELECT 1"))
    assert "\n" not in caught.value.message
    with db.session() as session:  # the pool replaces the lost connection
        assert session.execute(text("SELECT 1")).scalar_one() == 1
