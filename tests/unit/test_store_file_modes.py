"""The home folder and the SQLite database are private to their owner.

Real files, modes read back with os.stat; a permissive umask (0) shows the
modes are idsync's choice, not the umask's.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync import settings
from idsync.store import Database
from idsync.store.db import private_sqlite_file, report_if_open


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_home_folder_is_created_for_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, permissive_umask: None
) -> None:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "new" / "home"))
    assert mode(settings.home()) == 0o700


def test_the_database_and_its_wal_and_shm_files_are_created_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, permissive_umask: None
) -> None:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    db = Database()  # the default: idsync.db in the home folder
    try:
        db.ensure_schema()
        with db.engine.connect() as conn:  # a connection open keeps -wal and -shm in place
            conn.exec_driver_sql("SELECT 1").all()
            files = [db.file, Path(f"{db.file}-wal"), Path(f"{db.file}-shm")]
            assert all(f is not None and f.exists() for f in files)
            assert {str(f): mode(f) for f in files if f is not None} == {str(f): 0o600 for f in files}
    finally:
        db.dispose()
    assert mode(tmp_path / "home") == 0o700


def test_a_database_others_can_read_is_reported_once_and_left_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "shared.db"
    file.touch()
    file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="idsync.store.db"):
        private_sqlite_file(file)  # there already: left as it is
        report_if_open(file)
        report_if_open(file)
    assert [r.getMessage() for r in caplog.records] == [
        f"the database file {file} is open to other users (mode 0644) and holds plans with personal data: "
        f"let only its owner read it (chmod 600 {file})"
    ]
    assert mode(file) == 0o644


def test_a_private_database_is_not_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "mine.db"
    file.touch()
    file.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="idsync.store.db"):
        report_if_open(file)
    assert caplog.records == []


def test_an_idsync_database_others_can_read_is_reported_when_opened(
    tmp_path: Path, migrated_sqlite: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "old.db"
    file.write_bytes(migrated_sqlite.read_bytes())
    file.chmod(0o640)
    db = Database(f"sqlite:///{file}")
    with caplog.at_level(logging.WARNING, logger="idsync.store.db"):
        db.ensure_schema()
    db.dispose()
    reported = [r.getMessage().split(" and holds")[0] for r in caplog.records]
    # SQLite gives its -wal and -shm the mode of the database: reported with it while they exist.
    assert reported[0] == f"the database file {file} is open to other users (mode 0640)"
    assert all(line.startswith(f"the database file {file}-") for line in reported[1:])
    assert mode(file) == 0o640
