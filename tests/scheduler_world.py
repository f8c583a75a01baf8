"""A small idsync installation for collection and scheduler tests.

Real pieces only: a SQLite database file, an embedded directory file, CSV
sources, and jobs saved through the services. A *gated* source is a named
pipe (FIFO) the test feeds: a job reading it stays running until the test
lets it go, which is how tests hold a run "in progress" for as long as they
need, without sleeping and guessing.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from idsync.domain.collections import CollectionDefinition
from idsync.domain.principals import Principal
from idsync.services import definitions
from idsync.services.workspace import Workspace

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=People,{SUFFIX}"


def now_utc() -> datetime:
    """The real current instant, to the second (schedule creation times are real)."""
    return datetime.now(UTC).replace(microsecond=0)


def wall(moment: datetime) -> str:
    """An aware instant as the naive UTC wall-clock text a UTC trigger takes."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


class Gate:
    """A FIFO a CSV source reads; the rows only come when the test opens the gate.

    ``serve(times)`` answers that many reads (one per run that opens the
    pipe); each waits for :meth:`open` before writing its rows.
    """

    def __init__(self, path: Path, rows: list[str], delay: float = 0.0) -> None:
        self.path = path
        self.rows = rows
        self.delay = delay
        self.reading = threading.Event()
        self.reads = 0
        self._go = threading.Event()
        os.mkfifo(path)

    def serve(self, times: int = 1, timeout: float = 30.0) -> threading.Thread:
        thread = threading.Thread(target=self._serve, args=(times, timeout), daemon=True)
        thread.start()
        return thread

    def open(self) -> None:
        self._go.set()

    def wait_reading(self, timeout: float = 15.0) -> None:
        assert self.reading.wait(timeout), "no run opened the gated source"

    def _serve(self, times: int, timeout: float) -> None:
        for _ in range(times):
            fd = self._connect(timeout)
            if fd is None:
                return
            self.reads += 1
            self.reading.set()
            self._go.wait(timeout)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    for row in self.rows:
                        out.write(row + "\n")
                        if self.delay:
                            out.flush()
                            time.sleep(self.delay)
            except BrokenPipeError:
                pass  # the reader went away (its run stopped, or its process was killed)
            self.reading.clear()
            # A fresh pipe for the next read: the previous reader may still hold
            # this one open, and must not be the one that gets the next rows.
            fresh = self.path.with_suffix(".next")
            os.mkfifo(fresh)
            os.replace(fresh, self.path)

    def _connect(self, timeout: float) -> int | None:
        """Open the write end once a reader has the pipe open (never blocks for ever)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.01)
                continue
            os.set_blocking(fd, True)
            return fd
        return None


@dataclass
class World:
    """The installation: a workspace, its folder, and helpers to define things."""

    ws: Workspace
    root: Path

    def define(self, kind: str, data: dict[str, Any]) -> Any:
        definition = definitions.parse(kind, data)  # type: ignore[arg-type]
        definitions.save(self.ws, kind, definition)  # type: ignore[arg-type]
        return definition

    def csv_job(self, name: str, rows: list[str], *, header: str = "id,first,last") -> None:
        """A job writing people (uid, cn, sn) from a CSV file of its own."""
        path = self.root / f"{name}.csv"
        path.write_text(header + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
        self.define("source", {"name": name, "kind": "csv", "path": str(path)})
        self.people_job(name, name)

    def people_job(self, name: str, source: str) -> None:
        self.define(
            "job",
            {
                "name": name,
                "source": source,
                "destination": {"store": "dir", "container": PEOPLE},
                "mappings": [
                    {"attribute": "uid", "from": "id", "key": True},
                    {"attribute": "cn", "join": {"fields": ["first", "last"]}},
                    {"attribute": "sn", "from": "last"},
                ],
            },
        )

    def missing_source_job(self, name: str) -> None:
        """A job whose CSV file does not exist: its runs fail."""
        self.define("source", {"name": name, "kind": "csv", "path": str(self.root / "absent.csv")})
        self.people_job(name, name)

    def gated_job(self, name: str, rows: list[str], delay: float = 0.0) -> Gate:
        """A job reading a gated FIFO (no header: the fields are declared); once
        open, the gate writes a row every *delay* seconds."""
        gate = Gate(self.root / f"{name}.fifo", rows, delay)
        self.define(
            "source",
            {"name": name, "kind": "csv", "path": str(gate.path), "header": False, "fields": ["id", "first", "last"]},
        )
        self.people_job(name, name)
        return gate

    def collection(self, name: str, jobs: list[Any], **settings: Any) -> CollectionDefinition:
        data = {"name": name, "jobs": jobs, **settings}
        return self.define("collection", data)  # type: ignore[no-any-return]

    def schedule(self, name: str, triggers: list[dict[str, Any]], **settings: Any) -> Any:
        return self.define("schedule", {"name": name, "triggers": triggers, **settings})


def make_world(root: Path, database_url: str | None = None) -> World:
    """A workspace with the embedded directory ``dir`` holding ou=People, and
    a job ``people`` of two people. IDSYNC_HOME must point under *root*. The
    database is a SQLite file in *root* unless *database_url* names another."""
    ws = Workspace(database_url=database_url or f"sqlite:///{root / 'idsync.db'}", principal=Principal("tester"))
    world = World(ws, root)
    world.define("store", {
        "name": "dir", "kind": "local", "path": str(root / "dir.db"), "suffix": SUFFIX,
        # Notifications may be enabled on collections writing here (SPEC S5.2); nothing listens on port 9.
        "notification_server": {"host": "127.0.0.1", "port": 9, "tls": "none", "sender": "idsync@example.org"},
    })
    (root / "ous.csv").write_text("ou\nPeople\n", encoding="utf-8")
    world.define("source", {"name": "ous", "kind": "csv", "path": str(root / "ous.csv")})
    world.define(
        "job",
        {
            "name": "ou",
            "source": "ous",
            "destination": {
                "store": "dir",
                "container": SUFFIX,
                "scope": "one",
                "object_type": "custom",
                "object_classes": ["top", "organizationalUnit"],
                "rdn_attribute": "ou",
            },
            "mappings": [{"attribute": "ou", "from": "ou", "key": True}],
        },
    )
    from idsync.services import jobs

    jobs.run_job(ws, "ou")
    world.csv_job("people", ["1,Ada,Lovelace", "2,Alan,Turing"])
    return world


def later(moment: datetime, **delta: float) -> datetime:
    return moment + timedelta(**delta)
