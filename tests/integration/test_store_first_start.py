"""Several processes starting on a new SQLite database at the same moment,
as several nodes (or a CLI beside the server) would: each finds an empty
database, and all must succeed with the schema migrated once.
(PostgreSQL: tests/integration/test_store_postgres.py.)"""

from __future__ import annotations

from pathlib import Path

from idsync.store import Database
from tests.together import StartLine
from tests.unit.test_store_db import SHIPPED_HEAD

FIRST_START_PREPARE = """
from idsync.store import Database
database = Database(sys.argv[1])
database.head_revision()  # the migration scripts loaded before the start
"""
FIRST_START_RUN = "database.ensure_schema()"


def start_together(url: str, folder: Path, count: int = 4) -> list[tuple[str, int]]:
    """*count* processes each opening *url* for the first time at once: their stderr and exit codes."""
    line = StartLine(folder)
    starts = [line.start(FIRST_START_PREPARE, FIRST_START_RUN, [url]) for _ in range(count)]
    line.go()
    return [(p.communicate(timeout=120)[1], p.returncode) for p in starts]


def test_concurrent_first_starts_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'idsync.db'}"
    assert start_together(url, tmp_path / "start") == [("", 0)] * 4
    database = Database(url)
    assert database.current_revision() == SHIPPED_HEAD
    database.dispose()
