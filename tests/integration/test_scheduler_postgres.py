"""The scheduler's tables on a real PostgreSQL: "on conflict do nothing", the
partial unique indexes, claims, leases and fences, as on SQLite.

The session database and its fixtures are those of the store's PostgreSQL suite.
"""

from __future__ import annotations

import pytest

from tests.integration.test_store_postgres import db, migrated, pg_url, server
from tests.unit.test_scheduler_repo import (
    TestSchedulingRepository as TestSchedulingRepositoryOnPostgres,
)

__all__ = ["TestSchedulingRepositoryOnPostgres", "db", "migrated", "pg_url", "server"]

pytestmark = pytest.mark.postgres
