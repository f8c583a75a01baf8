"""Revision 0008 on PostgreSQL: existing audit entries chained, both trails append-only.

The chain's own tests run on PostgreSQL from test_store_postgres.py, where
the suite's database fixtures live.
"""

from __future__ import annotations

import pytest

from tests.integration.test_store_postgres import Server, server_url
from tests.unit.test_audit_chain_migration import upgrade_chains_existing_entries

pytestmark = pytest.mark.postgres


def test_upgrade_chains_existing_entries_and_downgrade_undoes_it() -> None:
    server = Server(server_url())
    url = server.create()
    try:
        upgrade_chains_existing_entries(url)
    finally:
        server.drop(url)
        server.admin.dispose()
