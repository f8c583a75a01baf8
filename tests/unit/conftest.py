"""Fixtures of the unit tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.store import Database


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated to the head revision, for tests to copy.

    Migrating a new file takes ~50 ms and copying one ~1 ms; over the hundreds
    of tests that each need a database of their own, that is seconds. (The
    migrations themselves are tested in test_store_db.py, from empty.)
    """
    path = tmp_path_factory.mktemp("migrated") / "idsync.db"
    database = Database(f"sqlite:///{path}")
    database.ensure_schema()
    database.dispose()
    assert not path.with_name(f"{path.name}-wal").exists(), "the copy would miss what the WAL holds"
    return path


def copy_migrated(template: Path, path: Path) -> str:
    """A copy of the migrated *template* at *path*; its database URL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    path.chmod(0o600)  # as idsync creates its database
    return f"sqlite:///{path}"


@pytest.fixture
def db(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Database]:
    """A migrated SQLite database of the test's own (PostgreSQL suites override it)."""
    database = Database(copy_migrated(migrated_sqlite, tmp_path / "idsync.db"))
    database.ensure_schema()  # at the head already: checks it, changes nothing
    yield database
    database.dispose()
