"""An edit based on a version, on a real PostgreSQL: the version check and
the write are one transaction, so an edit held between its check and its
write while another edit of the same version is saved is refused
(VersionConflictError, the API's 412), never written over the other.
The session database and its fixtures are those of the store's PostgreSQL suite.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from idsync.domain.principals import Principal
from idsync.errors import VersionConflictError
from idsync.services import definitions
from idsync.services.workspace import Workspace
from idsync.store import Database
from tests.integration.test_store_postgres import db, migrated, pg_url, server

__all__ = ["db", "migrated", "pg_url", "server"]

pytestmark = pytest.mark.postgres


def source(description: str) -> Any:
    return definitions.parse("source", {"name": "staff", "kind": "csv", "path": "/data/staff.csv",
                                        "description": description})


def test_an_edit_racing_another_on_the_same_version_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: Database,
) -> None:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    first, second = (Workspace(database_url=db.url, principal=Principal.system(name)) for name in ("a", "b"))
    try:
        definitions.save(first, "source", source("as read"))
        version = definitions.version_of(definitions.exportable(first, "source", "staff"))
        held, released = threading.Event(), threading.Event()

        def hold_the_write(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.lstrip().upper().startswith("UPDATE DATA_SOURCES") and not held.is_set():
                held.set()
                released.wait(30)

        event.listen(first.db.engine, "before_cursor_execute", hold_the_write)
        try:
            with ThreadPoolExecutor(1) as pool:
                edit_a = pool.submit(definitions.save, first, "source", source("edit A"), based_on=[version])
                assert held.wait(30), "edit A never reached its write"
                assert definitions.save(second, "source", source("edit B"), based_on=[version]) == "updated"
                released.set()
                with pytest.raises(VersionConflictError, match="changed since it was read"):
                    edit_a.result(30)
        finally:
            released.set()
            event.remove(first.db.engine, "before_cursor_execute", hold_the_write)
        assert definitions.exportable(second, "source", "staff")["description"] == "edit B"
        with pytest.raises(VersionConflictError):
            definitions.save(second, "source", source("stale"), based_on=[version])
    finally:
        first.close()
        second.close()
