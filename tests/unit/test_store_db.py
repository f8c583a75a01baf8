"""The database: SQLite settings, sessions, migrations and schema checks."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, insert, inspect, select, text

from idsync.errors import ConfigError, TransientError
from idsync.store import Database
from idsync.store.db import MIGRATIONS
from idsync.store.tables import audit_log, metadata
from tests.servers.slapd import free_port

EXPECTED_TABLES = {
    "identity_stores",
    "data_sources",
    "jobs",
    "runs",
    "run_errors",
    "run_logs",
    "plans",
    "plan_changes",
    "audit_log",
}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'idsync.db'}"


@pytest.fixture
def db(url: str) -> Iterator[Database]:
    database = Database(url)
    yield database
    database.dispose()


def schema_differences(database: Database, target: MetaData = metadata) -> list[object]:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, target))


SHIPPED_HEAD = Database("sqlite://").head_revision()

UNCHAINED = {"prev_hash": "0" * 64, "hash": "0" * 64}
"""These tests write audit_log as any table: its hash chain is tested in test_audit_chain.py."""
NEWER = "9999"


def migrations_with_second_revision(tmp_path: Path) -> Path:
    """A copy of the shipped migrations plus one more revision, as a newer idsync would ship."""
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / f"{NEWER}_extra.py").write_text(
        '"""extra"""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n"
        f'revision = "{NEWER}"\n'
        f'down_revision = "{SHIPPED_HEAD}"\n'
        "branch_labels = None\n"
        "depends_on = None\n"
        "def upgrade():\n"
        '    op.create_table("extra", sa.Column("id", sa.Integer(), primary_key=True))\n'
        "def downgrade():\n"
        '    op.drop_table("extra")\n'
    )
    return folder


# ---------------------------------------------------------------- SQLite


def test_the_parent_folder_of_a_sqlite_file_is_created(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'a' / 'b' / 'idsync.db'}")
    database.ensure_schema()
    database.dispose()
    assert (tmp_path / "a" / "b" / "idsync.db").is_file()


def test_default_url_is_sqlite_in_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    database = Database()
    database.ensure_schema()
    database.dispose()
    assert database.url == f"sqlite:///{tmp_path / 'home' / 'idsync.db'}"
    assert (tmp_path / "home" / "idsync.db").is_file()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(db: Database) -> None:
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_an_invalid_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid"):
        Database("not a url")


def test_a_database_other_than_sqlite_or_postgresql_is_refused() -> None:
    with pytest.raises(ConfigError, match="is not supported: use sqlite:///PATH or postgresql"):
        Database("mysql://idsync@127.0.0.1/idsync")


def test_a_plain_postgresql_url_uses_psycopg_3() -> None:
    database = Database("postgresql://idsync@127.0.0.1:5432/idsync")
    assert database.url == "postgresql+psycopg://idsync@127.0.0.1:5432/idsync"
    assert database.engine.dialect.driver == "psycopg"
    database.dispose()


def test_an_unreachable_server_is_a_transient_error_without_the_password() -> None:
    port = free_port()
    database = Database(f"postgresql+psycopg://idsync:hunter2@127.0.0.1:{port}/idsync?connect_timeout=2")
    with pytest.raises(TransientError) as caught:
        database.current_revision()
    assert caught.value.message == f"cannot connect to PostgreSQL at 127.0.0.1:{port}: Connection refused"
    assert caught.value.hint and caught.value.__cause__ is not None
    with pytest.raises(TransientError, match="cannot connect to PostgreSQL") as in_session, database.session() as session:
        session.execute(text("SELECT 1"))
    for error in (caught.value, in_session.value):
        assert "hunter2" not in f"{error.message} {error.hint}"
    database.dispose()


# ---------------------------------------------------------------- sessions


def test_a_session_commits_when_the_block_ends(db: Database) -> None:
    db.ensure_schema()
    with db.session() as session:
        session.execute(
            insert(audit_log).values(
                at=datetime.now(UTC), actor="ann", action="a", object_kind="k", object_name="n", detail={}, **UNCHAINED
            )
        )
    with db.session() as session:
        assert session.execute(select(audit_log.c.actor)).scalars().all() == ["ann"]


def test_a_session_rolls_back_when_the_block_raises(db: Database) -> None:
    db.ensure_schema()
    with pytest.raises(RuntimeError), db.session() as session:
        session.execute(
            insert(audit_log).values(
                at=datetime.now(UTC), actor="ann", action="a", object_kind="k", object_name="n", detail={}, **UNCHAINED
            )
        )
        raise RuntimeError("stop")
    with db.session() as session:
        assert session.execute(select(audit_log.c.actor)).scalars().all() == []


def test_timestamps_come_back_aware_in_utc(db: Database) -> None:
    db.ensure_schema()
    paris = timezone(timedelta(hours=2))
    written = datetime(2024, 6, 1, 14, 30, 15, 123456, tzinfo=paris)
    with db.session() as session:
        session.execute(
            insert(audit_log).values(at=written, actor="a", action="a", object_kind="k", object_name="n", detail={}, **UNCHAINED)
        )
    with db.session() as session:
        read = session.execute(select(audit_log.c.at)).scalar_one()
    assert read == written
    assert read.tzinfo is not None and read.utcoffset() == timedelta(0)
    assert read.hour == 12


def test_naive_timestamps_are_refused(db: Database) -> None:
    db.ensure_schema()
    with pytest.raises(Exception, match="naive datetime"), db.session() as session:
        session.execute(
            insert(audit_log).values(
                at=datetime(2024, 1, 1), actor="a", action="a", object_kind="k", object_name="n", detail={}, **UNCHAINED
            )
        )


# ---------------------------------------------------------------- migrations


def test_upgrade_from_empty_creates_every_table(db: Database) -> None:
    assert db.current_revision() is None
    db.upgrade()
    assert db.current_revision() == db.head_revision() == SHIPPED_HEAD
    with db.engine.connect() as conn:
        names = {row[0] for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
    assert names >= EXPECTED_TABLES


def test_upgrade_is_idempotent(db: Database) -> None:
    db.upgrade()
    db.upgrade()
    db.upgrade("head")
    assert db.current_revision() == db.head_revision()


def test_models_and_migrations_agree(db: Database) -> None:
    db.upgrade()
    assert schema_differences(db) == []


def test_the_comparison_notices_a_model_the_migrations_lack(db: Database) -> None:
    db.upgrade()
    changed = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["runs"].append_column(Column("extra", Integer))
    differences = schema_differences(db, changed)
    assert len(differences) == 1
    assert "add_column" in repr(differences[0]) and "extra" in repr(differences[0])


def test_downgrade_to_base_removes_every_table(db: Database) -> None:
    from alembic import command

    db.upgrade()
    with db.engine.begin() as conn:
        config = db._alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    with db.engine.connect() as conn:
        names = {row[0] for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
    assert names & EXPECTED_TABLES == set()


# ---------------------------------------------------------------- ensure_schema


def test_ensure_schema_migrates_an_empty_database(db: Database) -> None:
    db.ensure_schema()
    assert db.current_revision() == db.head_revision()


def test_ensure_schema_accepts_a_database_at_head(db: Database) -> None:
    db.upgrade()
    db.ensure_schema()
    assert db.current_revision() == db.head_revision()


def test_ensure_schema_refuses_a_database_behind_head(url: str, tmp_path: Path) -> None:
    Database(url).upgrade()
    newer = Database(url, migrations=migrations_with_second_revision(tmp_path))
    with pytest.raises(ConfigError) as caught:
        newer.ensure_schema()
    assert caught.value.message == f"database schema is at {SHIPPED_HEAD}, this idsync needs {NEWER}"
    assert caught.value.hint == "upgrade the database schema"
    assert newer.current_revision() == SHIPPED_HEAD
    newer.upgrade()
    newer.ensure_schema()
    assert newer.current_revision() == NEWER
    newer.dispose()


def test_ensure_schema_refuses_a_database_ahead_of_head(url: str, tmp_path: Path) -> None:
    newer = Database(url, migrations=migrations_with_second_revision(tmp_path))
    newer.upgrade()
    newer.dispose()
    older = Database(url)
    with pytest.raises(ConfigError, match=rf"schema is at {NEWER}, newer than this idsync needs \({SHIPPED_HEAD}\)"):
        older.ensure_schema()
    older.dispose()


def test_ensure_schema_refuses_idsync_tables_without_a_version(db: Database, tmp_path: Path) -> None:
    db.upgrade()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    with pytest.raises(ConfigError, match=r"has idsync tables .* but no schema version"):
        db.ensure_schema()


def test_a_sqlite_file_of_other_tables_is_not_an_idsync_database_and_is_left_alone(url: str) -> None:
    file = url.removeprefix("sqlite:///")
    with sqlite3.connect(file) as conn:
        conn.execute("CREATE TABLE unrelated (id INTEGER)")
    database = Database(url)
    with pytest.raises(ConfigError) as caught:
        database.ensure_schema()
    assert caught.value.message == (
        f"the database file {file} is not an idsync database: it holds other tables (unrelated) and none of idsync's"
    )
    assert caught.value.hint
    with database.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"unrelated"}
    database.dispose()


def test_a_sqlite_file_of_another_application_using_alembic_is_not_an_idsync_database(url: str) -> None:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('a1b2c3')")
    database = Database(url)
    with pytest.raises(ConfigError, match=r"is not an idsync database: it holds other tables \(invoices\)"):
        database.ensure_schema()
    database.dispose()


def test_a_database_left_with_an_empty_version_table_is_migrated(db: Database) -> None:
    """What a downgrade to nothing leaves: no idsync table, no revision."""
    from alembic import command

    db.upgrade()
    with db.engine.begin() as conn:
        config = db._alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    db.ensure_schema()
    assert db.current_revision() == SHIPPED_HEAD


# ---------------------------------------------------------------- damaged, foreign and locked files


def audit_row(actor: str = "ann") -> object:
    return insert(audit_log).values(at=datetime.now(UTC), actor=actor, action="a", object_kind="k", object_name="n", detail={}, **UNCHAINED)


@pytest.fixture
def filled(url: str) -> Path:
    """A real idsync database with some rows, closed (its log merged into the file)."""
    database = Database(url)
    database.ensure_schema()
    with database.session() as session:
        for n in range(200):
            session.execute(audit_row(f"actor-{n}"))
    database.dispose()
    file = Path(url.removeprefix("sqlite:///"))
    assert not Path(f"{file}-wal").exists()
    return file


def test_a_truncated_database_is_damaged_naming_the_file_and_the_way_out(url: str, filled: Path) -> None:
    with open(filled, "r+b") as handle:
        handle.truncate(filled.stat().st_size // 3)
    database = Database(url)
    with pytest.raises(ConfigError) as caught:
        database.ensure_schema()
    assert caught.value.message.startswith(f"the database file {filled} is damaged: ")
    assert "malformed" in caught.value.message or "not a database" in caught.value.message
    assert caught.value.hint == "restore it from a backup"
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    database.dispose()


def test_a_database_with_damaged_pages_is_damaged_in_a_session_too(url: str, filled: Path) -> None:
    with open(filled, "r+b") as handle:  # the header stays, every page after the schema is overwritten
        handle.seek(4096)
        handle.write(b"\xff" * (filled.stat().st_size - 4096))
    database = Database(url)
    with pytest.raises(ConfigError, match=f"the database file {filled} is damaged") as caught, database.session() as session:
        session.execute(select(audit_log.c.actor)).all()
    assert caught.value.hint == "restore it from a backup"
    database.dispose()


def test_a_file_that_is_not_sqlite_is_not_an_idsync_database(url: str, tmp_path: Path) -> None:
    file = tmp_path / "idsync.db"
    file.write_bytes(b"id,name\n1,Ann\n" * 500)
    database = Database(url)
    with pytest.raises(ConfigError) as caught:
        database.ensure_schema()
    assert caught.value.message == f"the database file {file} is not an idsync database: it is not a SQLite file"
    assert caught.value.hint
    assert file.read_bytes() == b"id,name\n1,Ann\n" * 500
    database.dispose()


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_DATABASE_BUSY_TIMEOUT", "0.05")


def test_a_write_blocked_by_another_writer_is_transient_naming_the_file(url: str, filled: Path, short_wait: None) -> None:
    database = Database(url)
    database.ensure_schema()
    holder = sqlite3.connect(filled, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(TransientError) as caught, database.session() as session:
            session.execute(audit_row("blocked"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert caught.value.message == f"the database file {filled} is locked by another process"
    assert caught.value.hint and isinstance(caught.value.__cause__, sqlite3.OperationalError)
    with database.session() as session:  # the failed transaction was rolled back; the next one works
        session.execute(audit_row("after"))
        assert session.execute(select(audit_log.c.actor).where(audit_log.c.actor != "ann")).scalars().all()[-1] == "after"
    database.dispose()


def test_a_file_held_exclusively_by_another_process_is_transient_even_to_read(
    url: str, filled: Path, short_wait: None
) -> None:
    holder = sqlite3.connect(filled, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("DELETE FROM job_state")
    database = Database(url)
    try:
        with pytest.raises(TransientError, match=f"^the database file {filled} is locked by another process$"):
            database.ensure_schema()
    finally:
        holder.close()
        database.dispose()


def test_the_busy_timeout_comes_from_the_setting(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_DATABASE_BUSY_TIMEOUT", "2.5")
    database = Database(url)
    with database.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500
    database.dispose()
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("IDSYNC_DATABASE_BUSY_TIMEOUT", bad)
        with pytest.raises(ConfigError, match="IDSYNC_DATABASE_BUSY_TIMEOUT"):
            Database(url)



def test_the_shipped_head_read_from_the_files_is_alembics() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from idsync.store.schema_head import shipped_head

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert shipped_head(MIGRATIONS / "versions") == ScriptDirectory.from_config(config).get_current_head()


def test_a_database_at_the_shipped_head_is_opened_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'idsync.db'}"
    Database(url).ensure_schema()
    code = (
        "import sys\n"
        "from idsync.store.db import Database\n"
        f"Database({url!r}).ensure_schema()\n"
        "sys.exit(1 if any(m.startswith('alembic') for m in sys.modules) else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
