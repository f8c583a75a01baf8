"""The idsync database: engine, sessions and schema migrations.

SQLite is the default (one file in the idsync home); PostgreSQL serves
several nodes (``postgresql+psycopg://...``). The schema is owned by the
Alembic revisions shipped in ``migrations/``; they run in-process, with no
``alembic.ini`` to find, so an installed idsync can upgrade its own database.

A fresh database is created on first use. A database at another revision is
never touched implicitly: upgrading is an explicit operator decision
(``idsync db upgrade``), since a node running the old code may still use it.
A SQLite file holding other tables and none of idsync's is refused, never
filled with idsync's tables.

Driver failures (unreachable, locked, damaged) become idsync errors at the
engine, in :mod:`idsync.store.db_errors`.

A SQLite file holds plans, and plans hold personal data: idsync creates it
readable and writable by its owner only (0600), and SQLite gives its -wal
and -shm files the same mode. A file that already exists keeps its mode:
one open to other users is reported once per process, never changed behind
its owner's back (a shared group may be deliberate).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from idsync import settings
from idsync.errors import ConfigError
from idsync.store import tables
from idsync.store.db_errors import NOT_OURS_HINT, translate_errors
from idsync.store.schema_head import recorded_revision, shipped_head

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where a migration is looked at, not here: a command on a
# database already at the shipped revision never needs it (see schema_head).

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
_REPORTED: set[Path] = set()
"""Files already reported open to other users by this process."""

SUPPORTED_BACKENDS = ("sqlite", "postgresql")

_MIGRATING = threading.Lock()
"""Alembic's ``context`` and ``op`` are process-wide: one migration at a time per process."""

_UPGRADE_LOCK = zlib.crc32(b"idsync schema upgrade")
"""PostgreSQL advisory lock id taken while migrating, so two nodes never migrate at once."""


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory or URI database."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:") or url.query.get("uri"):
        return None
    return Path(database).expanduser()


def private_sqlite_file(file: Path) -> None:
    """Create the SQLite *file* (and its folder) open to its owner only, unless it exists."""
    file.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    with contextlib.suppress(FileExistsError):
        # An empty file is a new SQLite database; SQLite keeps this mode for its -wal and -shm.
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


def report_if_open(file: Path) -> None:
    """Report, once per process, that the SQLite *file* (or its -wal, -shm)
    can be read by other users; change nothing."""
    for path in (file, Path(f"{file}-wal"), Path(f"{file}-shm")):
        _report_if_open(path)


def _report_if_open(path: Path) -> None:
    if os.name != "posix" or path in _REPORTED:
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _REPORTED.add(path)
        log.warning(
            "the database file %s is open to other users (mode %s) and holds plans with personal data: "
            "let only its owner read it (chmod 600 %s)",
            path, oct(stat.S_IMODE(mode))[2:].zfill(4), path,
        )


def busy_timeout() -> float:
    """Seconds a SQLite connection waits for another process's write before
    the database is reported locked (``IDSYNC_DATABASE_BUSY_TIMEOUT``)."""
    seconds = settings.get_float("database_busy_timeout")
    if seconds < 0:
        raise ConfigError(
            f"IDSYNC_DATABASE_BUSY_TIMEOUT={seconds:g} is negative", field="database_busy_timeout",
            hint="give the seconds to wait, 0 or more",
        )
    return seconds


def _use_wal(cursor: Any, timeout_ms: int) -> None:
    """Put the database in WAL mode (it stays so, in the file).

    Switching needs the file to itself, and SQLite answers "database is
    locked" at once, without its busy wait, when another process holds it:
    as when several processes open a new database together. The switch is
    made once per file, so it is tried again for up to the busy timeout;
    a database already in WAL mode needs no switch at all.
    """
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + timeout_ms / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _sqlite_settings(timeout_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        """Per-connection SQLite settings: WAL for concurrent readers, enforced foreign keys."""
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            _use_wal(cursor, timeout_ms)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return on_connect


class Database:
    """One idsync database: an engine, its sessions and its schema version.

    *migrations* is the Alembic script folder; only tests point it elsewhere.
    """

    def __init__(self, url: str | None = None, *, migrations: Path = MIGRATIONS) -> None:
        self.url: str = url or settings.database_url()
        self.migrations = migrations
        try:
            parsed = make_url(self.url)
        except SQLAlchemyError as exc:
            raise ConfigError(f"database URL {self.url!r} is not valid: {exc}") from exc
        if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
            raise ConfigError(
                f"database {parsed.render_as_string(hide_password=True)} is not supported: "
                "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DATABASE"
            )
        if parsed.drivername == "postgresql":
            # The plain scheme means psycopg2 to SQLAlchemy; idsync ships psycopg 3.
            parsed = parsed.set(drivername="postgresql+psycopg")
            self.url = parsed.render_as_string(hide_password=False)
        self._parsed = parsed
        self.file = _sqlite_file(parsed)
        """The SQLite file, None for PostgreSQL or an in-memory database."""
        if self.file is not None:
            private_sqlite_file(self.file)
        try:
            self.engine: Engine = self._create_engine(parsed)
        except ImportError as exc:
            raise ConfigError(
                f"cannot use database {self.display_url}: its driver is not installed ({exc}); "
                "for PostgreSQL install idsync[postgres]"
            ) from exc
        except SQLAlchemyError as exc:
            raise ConfigError(f"cannot use database {self.display_url}: {exc}") from exc
        translate_errors(self.engine, parsed, self.file)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._parsed.get_backend_name()

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return self._parsed.render_as_string(hide_password=True)

    @staticmethod
    def _create_engine(url: URL) -> Engine:
        if url.get_backend_name() == "sqlite":
            timeout = busy_timeout()
            engine = create_engine(url, connect_args={"timeout": timeout})
            event.listen(engine, "connect", _sqlite_settings(round(timeout * 1000)))
            return engine
        return create_engine(url, pool_pre_ping=True)

    # ------------------------------------------------------------ sessions

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed when the block exits, rolled back if it raises."""
        session = Session(self.engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection (before exit, or before dropping the database)."""
        self.engine.dispose()

    # ------------------------------------------------------------ schema

    def _alembic_config(self) -> Config:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(self.migrations))
        # configparser interpolates '%', which URL-encoded passwords contain.
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    def head_revision(self) -> str:
        """The schema revision this version of idsync needs."""
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        if head is None:
            raise ConfigError(f"no schema migrations found in {self.migrations}: reinstall idsync")
        return head

    def current_revision(self) -> str | None:
        """The schema revision of the database, None when it has never been migrated."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to *revision*; nothing happens when it is there already."""
        from alembic import command

        config = self._alembic_config()
        with _MIGRATING, self.engine.begin() as conn:
            # One migrator at a time, and the schema with its version row
            # committed at once: concurrent first starts see either
            # nothing or the finished schema.
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
            config.attributes["connection"] = conn
            command.upgrade(config, revision)

    def ensure_schema(self) -> None:
        """Make sure the schema is the one this idsync needs before it is used.

        An empty database is migrated on the spot; a database at another
        revision is refused with what to do, never migrated behind the
        operator's back. An idsync SQLite file that other users can read is
        reported then (once per process).
        """
        self._ensure_schema()
        if self.file is not None:
            report_if_open(self.file)

    def _ensure_schema(self) -> None:
        shipped = shipped_head(self.migrations / "versions")
        if shipped is not None:
            with self.engine.connect() as conn:
                if recorded_revision(conn) == shipped:
                    return
        from alembic.script import ScriptDirectory

        head = self.head_revision()
        # Tables first, revision second: a concurrent first start commits
        # both at once, so this order never sees tables without a version.
        existing = self._table_names()
        present = sorted(name for name in tables.metadata.tables if name in existing)
        current = self.current_revision()
        if current == head:
            return
        script = ScriptDirectory.from_config(self._alembic_config())
        known = {rev.revision for rev in script.walk_revisions()}
        others = sorted(existing - set(present) - {"alembic_version"})
        if self.file is not None and others and not present and current not in known:
            # Another application's file: filling it with idsync's tables would hide the mistake.
            raise ConfigError(
                f"the database file {self.file} is not an idsync database: it holds other tables "
                f"({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}) and none of idsync's",
                hint=NOT_OURS_HINT,
            )
        if current is None:
            if present:
                raise ConfigError(
                    f"database {self.display_url} has idsync tables ({', '.join(present)}) but no schema version",
                    hint="restore it from a backup, or use an empty database",
                )
            self.upgrade()
            return
        if current not in known:
            raise ConfigError(
                f"database schema is at {current}, newer than this idsync needs ({head})",
                hint="upgrade idsync on this machine",
            )
        raise ConfigError(f"database schema is at {current}, this idsync needs {head}", hint="upgrade the database schema")

    def _table_names(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(inspect(conn).get_table_names())

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"
