"""Crash safety of the embedded directory: a writer killed with SIGKILL in the
middle of a load leaves a file that opens, passes SQLite's integrity check and
holds whole batches of whole entries, and other processes can share the file."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from idsync.connectors.local import LocalDirectory
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.entry import Attrs, Scope

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=People,{SUFFIX}"
BATCH = 200

WRITER = """
import sys
from pathlib import Path
from idsync.connectors.local import LocalDirectory
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.entry import Attrs

after = None if sys.argv[4] == "none" else int(sys.argv[4])
directory = LocalDirectory(Path(sys.argv[1]), batch_size=int(sys.argv[2]), writer_after=after)
first = int(sys.argv[3])
if first == 0:
    people = Attrs({"objectClass": ["organizationalUnit"], "ou": ["People"]})
    list(directory.apply([Change(ChangeOp.CREATE, "ou=People,dc=example,dc=org", attrs=people)]))

def changes():
    i = first
    while True:
        yield Change(ChangeOp.CREATE, f"uid=u{i},ou=People,dc=example,dc=org", key=f"u{i}", attrs=Attrs({
            "objectClass": ["inetOrgPerson"], "uid": [f"u{i}"], "cn": [f"User {i}"], "sn": ["S"],
            "mail": [f"u{i}@example.org"], "description": [f"entry {i} " + "x" * 300],
        }))
        i += 1

for n, outcome in enumerate(directory.apply(changes()), 1):
    if outcome.error is not None:
        sys.exit(f"unexpected error: {outcome.error}")
    if n % int(sys.argv[2]) == 0:
        print(first + n, flush=True)
"""


def start_writer(path: Path, first: int = 0, writer_after: int | None = None) -> subprocess.Popen[str]:
    """A load of people into *path*, in process, or through a writer process after *writer_after* changes."""
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(BATCH), str(first), str(writer_after).lower()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def kill_after(process: subprocess.Popen[str], batches: int, delay: float, *, feeds_a_writer: bool = False) -> int:
    """Let the writer commit *batches* batches, wait *delay*, SIGKILL it; the last count it reported."""
    assert process.stdout is not None
    committed = 0
    for _ in range(batches):
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "writer died"
        committed = int(line)
    time.sleep(delay)
    assert bool(writer_processes_of(process.pid)) == feeds_a_writer
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return committed


def check_whole(path: Path, at_least: int) -> int:
    """Check the file after a crash; return how many users it holds."""
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with LocalDirectory(path) as directory:
        users = list(directory.search(PEOPLE, Scope.ONE, "(objectClass=inetOrgPerson)"))
    count = len(users)
    assert count >= at_least, "every reported outcome was committed"
    assert count % BATCH == 0, "batches are all or nothing"
    assert sorted(int(e.attrs["uid"][0][1:]) for e in users) == list(range(count))
    for entry in users:
        i = entry.attrs["uid"][0][1:]
        assert entry.attrs["cn"] == (f"User {i}",)
        assert entry.attrs["mail"] == (f"u{i}@example.org",)
        assert entry.attrs["description"] == (f"entry {i} " + "x" * 300,)
    return count


def writer_processes_of(pid: int) -> list[int]:
    """The embedded directory writer processes started by process *pid*, alive or not yet reaped."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"idsync.connectors.local.writer" in command and command[-2:-1] == [str(pid).encode()]:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("writer_after", [None, BATCH], ids=["in-process", "writer-process"])
@pytest.mark.parametrize("delay", [0.0, 0.013, 0.05])
def test_killed_writer_leaves_whole_batches(tmp_path: Path, delay: float, writer_after: int | None) -> None:
    path = tmp_path / "dir.db"
    load = start_writer(path, writer_after=writer_after)
    committed = kill_after(load, batches=3, delay=delay, feeds_a_writer=writer_after is not None)
    # A writer process dies with the process that feeds it: it commits nothing after.
    deadline = time.monotonic() + 10
    while writer_processes_of(load.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not writer_processes_of(load.pid)

    count = check_whole(path, committed)

    # The file goes on working: another writer continues where the first stopped.
    again = start_writer(path, first=count, writer_after=writer_after)
    committed = kill_after(again, batches=2, delay=delay, feeds_a_writer=writer_after is not None)
    assert check_whole(path, committed) >= count + 2 * BATCH


def test_reader_in_another_process_during_a_load(tmp_path: Path) -> None:
    path = tmp_path / "dir.db"
    writer = start_writer(path)
    try:
        assert writer.stdout is not None
        first = int(writer.stdout.readline())
        with LocalDirectory(path) as reader:
            seen = [sum(1 for _ in reader.search(PEOPLE, Scope.ONE)) for _ in range(3)]
            (outcome,) = reader.apply([Change(ChangeOp.CREATE, f"ou=Other,{SUFFIX}", key="other",
                                              attrs=Attrs({"objectClass": ["organizationalUnit"]}))])
            assert outcome.error is None
        assert seen[0] >= first
        assert seen == sorted(seen)
        assert all(n % BATCH == 0 for n in seen)
    finally:
        writer.kill()
        writer.wait(timeout=30)
