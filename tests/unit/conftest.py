"""Fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.store import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database of the test's own (PostgreSQL suites override it)."""
    database = Database(f"sqlite:///{tmp_path / 'idsync.db'}")
    database.ensure_schema()
    yield database
    database.dispose()
