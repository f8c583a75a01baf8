"""What a user sees when a command fails: one line, a hint line, an exit code a script can test."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.test_cli import Cli, free_port


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def test_an_object_that_does_not_exist_exits_6_with_the_command_that_lists_them(cli: Cli) -> None:
    missing = cli("job", "show", "nope", ok=False)
    assert missing.returncode == 6
    assert missing.stderr.splitlines() == ["idsync: error: no job named 'nope'", "hint: list the jobs (`idsync job list`)"]
    retried = cli("outbox", "retry", "41", ok=False)
    assert retried.returncode == 6
    assert retried.stderr.splitlines() == [
        "idsync: error: no outbox message 41", "hint: list the outbox messages (`idsync outbox list`)",
    ]


def test_an_error_without_a_hint_is_one_line_and_exits_1(cli: Cli, tmp_path: Path) -> None:
    missing = cli("apply", "-f", str(tmp_path / "nope.yaml"), ok=False)
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [f"idsync: error: {tmp_path / 'nope.yaml'}: no such file"]


# ---------------------------------------------------------------- a database that cannot be used


def one_error(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The error line and the hint line: nothing else on stderr, no traceback, a failing exit."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("idsync: error: ") and lines[1].startswith("hint: "), proc.stderr
    return lines


@pytest.fixture
def database(cli: Cli) -> Path:
    """The idsync database of the home folder, with definitions in it, closed."""
    cli("store", "add", "dir", "--kind", "local", "--path", "dir.db")
    for name in ("hr", "contractors", "students"):
        cli("source", "add", name, "--path", f"{name}.csv")
    file = cli.home / "idsync.db"
    assert file.is_file() and not Path(f"{file}-wal").exists()
    return file


def test_a_truncated_database(cli: Cli, database: Path) -> None:
    with open(database, "r+b") as handle:
        handle.truncate(database.stat().st_size // 3)
    error, hint = one_error(cli("job", "list", ok=False))
    assert error.startswith(f"idsync: error: the database file {database} is damaged: ")
    assert hint == "hint: restore it from a backup"


def test_a_file_that_is_not_a_database(cli: Cli, database: Path) -> None:
    database.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    error, _hint = one_error(cli("job", "list", ok=False))
    assert error == f"idsync: error: the database file {database} is not an idsync database: it is not a SQLite file"


def test_a_sqlite_database_of_another_application(cli: Cli, tmp_path: Path) -> None:
    file = cli.home / "idsync.db"
    cli.home.mkdir()
    with sqlite3.connect(file) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    error, _hint = one_error(cli("job", "list", ok=False))
    assert error == (
        f"idsync: error: the database file {file} is not an idsync database: "
        "it holds other tables (invoices) and none of idsync's"
    )
    with sqlite3.connect(file) as conn:
        assert [row[0] for row in conn.execute("SELECT name FROM sqlite_master")] == ["invoices"]


@contextmanager
def held(file: Path, *, exclusively: bool) -> Iterator[None]:
    """Another program's write transaction on *file*, open for the block;
    *exclusively* also keeps readers out (SQLite's exclusive locking mode)."""
    holder = sqlite3.connect(file, isolation_level=None)
    try:
        if exclusively:
            holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE identity_stores SET updated_at = updated_at WHERE name = 'dir'")
        yield
    finally:
        holder.close()


def test_a_database_locked_by_another_program(cli: Cli, database: Path) -> None:
    cli.env["IDSYNC_DATABASE_BUSY_TIMEOUT"] = "0.2"
    with held(database, exclusively=True):
        error, _hint = one_error(cli("job", "list", ok=False))
    assert error == f"idsync: error: the database file {database} is locked by another process"
    with held(database, exclusively=False):
        assert cli("job", "list").returncode == 0  # readers are not kept waiting by a writer
        error, _hint = one_error(cli("source", "add", "more", "--path", "more.csv", ok=False))
    assert error == f"idsync: error: the database file {database} is locked by another process"
    assert "more" not in cli("source", "list").stdout


def test_a_postgresql_server_that_does_not_answer(cli: Cli) -> None:
    port = free_port()
    cli.env["IDSYNC_DATABASE_URL"] = f"postgresql+psycopg://idsync:pw-in-url-7@127.0.0.1:{port}/idsync"
    proc = cli("job", "list", ok=False)
    error, _hint = one_error(proc)
    assert error == f"idsync: error: cannot connect to PostgreSQL at 127.0.0.1:{port}: Connection refused"
    assert "pw-in-url-7" not in proc.stderr
