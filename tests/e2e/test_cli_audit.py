"""``idsync audit verify`` as a user runs it: an intact trail, a tampered one, heads kept elsewhere."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import Cli
from tests.scheduler_world import make_world

HEAD = re.compile(r"head ([0-9a-f]{64})$")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home whose stores, sources and jobs were made through the services (so audited)."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("IDSYNC_HOME", str(folder))
    make_world(folder).ws.close()
    yield folder


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home)


def tamper(home: Path, sql: str) -> None:
    """Edit the database past its append-only triggers, as anyone who can open the file could."""
    conn = sqlite3.connect(home / "idsync.db", isolation_level=None)
    try:
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for (name,) in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute(sql)
    finally:
        conn.close()


def test_an_untouched_trail_is_reported_intact_with_its_heads(cli: Cli) -> None:
    entries = len(cli.json("audit", "list", "--limit", "1000"))
    assert entries > 0
    lines = cli("audit", "verify").stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"audit trail intact: {entries} entries, head ")
    assert HEAD.search(lines[0])
    assert lines[1] == f"decision trail intact: 0 entries, head {'0' * 64}"
    data = cli.json("audit", "verify")
    assert data["intact"] is True and data["missing_heads"] == []
    assert [(t["table"], t["entries"], t["faults"]) for t in data["trails"]] == [
        ("audit_log", entries, []), ("request_decisions", 0, []),
    ]


def test_an_edited_entry_fails_the_check_naming_the_row(cli: Cli, home: Path) -> None:
    tamper(home, "UPDATE audit_log SET actor = 'mallory' WHERE id = 2")
    proc = cli("audit", "verify", ok=False)
    assert proc.returncode == 1
    assert "row 2 of audit_log was edited: its hash does not match its contents" in proc.stdout.splitlines()
    assert proc.stdout.splitlines()[0].startswith("audit trail has 1 fault(s): ")
    assert cli("audit", "verify", "--json", ok=False).returncode == 1


def test_a_deleted_entry_fails_the_check(cli: Cli, home: Path) -> None:
    tamper(home, "DELETE FROM audit_log WHERE id = 2")
    proc = cli("audit", "verify", ok=False)
    assert proc.returncode == 1
    assert "row 3 of audit_log does not follow row 1: " in proc.stdout


def test_a_head_written_down_earlier_is_looked_for(cli: Cli, home: Path) -> None:
    head = HEAD.search(cli("audit", "verify").stdout.splitlines()[0])
    assert head is not None
    (home / "extra.csv").write_text("id,name\n1,Ann\n", encoding="utf-8")
    cli("source", "add", "extra", "--path", str(home / "extra.csv"))  # the trail grows past the head
    after = cli("audit", "verify", "--head", head.group(1)).stdout.splitlines()[0]
    assert HEAD.search(after) and head.group(1) not in after
    unknown = "ab" * 32
    proc = cli("audit", "verify", "--head", unknown, ok=False)
    assert proc.returncode == 1
    assert f"head {unknown} written down earlier is no longer in any trail: entries up to it were rewritten" in proc.stdout


def test_a_head_that_is_not_a_hash_is_one_error_line(cli: Cli) -> None:
    proc = cli("audit", "verify", "--head", "abc", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == "idsync: error: head 'abc' is not a head hash"
    assert proc.stderr.splitlines()[1].startswith("hint: ")
