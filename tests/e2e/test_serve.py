"""``idsync serve`` as a real process: it prints its address and the first
administrator's one-time password; a client signs in over HTTP, defines a
store, a source and jobs, runs them and follows the 202s to the end; SIGTERM
stops it cleanly, leaving no run marked running."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from idsync.domain.principals import Principal
from idsync.services import history
from idsync.services.workspace import Workspace
from tests.scheduler_world import PEOPLE, SUFFIX, Gate

ROWS = [f"{n},First{n},Last{n}" for n in range(1, 400)]


class Served:
    """A running ``idsync serve`` and what it printed."""

    def __init__(self, home: Path, settings: dict[str, str] | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_")}
        env["IDSYNC_HOME"] = str(home)
        env["IDSYNC_BATCH_SIZE"] = "10"
        env |= settings or {}
        self.home = home
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "idsync", "serve", "--port", "0", "--shutdown-timeout", "5", "--quiet"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.address = self.wait_for(r"idsync serving on (http://\S+)").group(1)
        found = [re.search(r"one-time password: (\S+)", line) for line in self.out]
        self.password = next(m.group(1) for m in found if m)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
                continue
            self.out.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"serve never printed {pattern!r}: {self.out}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    home = tmp_path / "home"
    home.mkdir()
    server = Served(home)
    yield server
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()


PEOPLE_JOB = {
    "source": "people", "destination": {"store": "dir", "container": PEOPLE},
    "mappings": [{"attribute": "uid", "from": "id", "key": True},
                 {"attribute": "cn", "join": {"fields": ["first", "last"]}}, {"attribute": "sn", "from": "last"}],
}


def poster(client: httpx.Client) -> Callable[[str, dict], httpx.Response]:  # type: ignore[type-arg]
    """POST a JSON body to the API, expecting it created or accepted."""

    def post(path: str, body: dict) -> httpx.Response:  # type: ignore[type-arg]
        response = client.post("/api/v1" + path, json=body)
        assert response.status_code in (201, 202), response.text
        return response

    return post


def define_people(post: Callable[[str, dict], httpx.Response], root: Path) -> None:  # type: ignore[type-arg]
    """Over the API: store ``dir``, sources ``ous`` and ``people`` (Ada and Alan),
    job ``ou`` (the container), job ``people``, and collection ``all`` of both."""
    post("/stores", {"name": "dir", "kind": "local", "path": str(root / "dir.db"), "suffix": SUFFIX})
    (root / "ous.csv").write_text("ou\nPeople\n", encoding="utf-8")
    (root / "people.csv").write_text("id,first,last\n1,Ada,Lovelace\n2,Alan,Turing\n", encoding="utf-8")
    post("/sources", {"name": "ous", "kind": "csv", "path": str(root / "ous.csv")})
    post("/sources", {"name": "people", "kind": "csv", "path": str(root / "people.csv")})
    post("/jobs", {
        "name": "ou", "source": "ous", "mappings": [{"attribute": "ou", "from": "ou", "key": True}],
        "destination": {"store": "dir", "container": SUFFIX, "scope": "one", "object_type": "custom",
                        "object_classes": ["top", "organizationalUnit"], "rdn_attribute": "ou"},
    })
    post("/jobs", {"name": "people", **PEOPLE_JOB})
    post("/collections", {"name": "all", "jobs": ["ou", "people"]})


def follow(client: httpx.Client, url: str) -> dict:  # type: ignore[type-arg]
    """The run at *url*, once its event stream has ended."""
    with client.stream("GET", url + "/events") as stream:
        assert stream.status_code == 200
        text = "".join(stream.iter_text())
    last = text.strip().split("\n\n")[-1]
    assert last.startswith("event: end"), text
    return client.get(url).json()  # type: ignore[no-any-return]


def test_serve_signs_in_runs_through_the_api_and_stops_cleanly_on_sigterm(served: Served, tmp_path: Path) -> None:
    client = httpx.Client(base_url=served.address, timeout=30)
    signed = client.post("/api/v1/session", json={"name": "admin", "password": served.password})
    assert signed.status_code == 200, signed.text
    assert signed.json()["roles"] == ["admin", "auditor", "operator"]
    client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
    assert client.get("/api/openapi.json").json()["info"]["title"] == "idsync"
    assert client.get("/api/docs").status_code == 200

    post = poster(client)
    define_people(post, tmp_path)

    started = post("/collections/all/run", {})
    run = follow(client, started.headers["Location"])
    assert run["run"]["state"] == "succeeded", run
    assert [(j["job_name"], j["counts"]["created"]) for j in run["jobs"]] == [("ou", 1), ("people", 2)]

    # A slow run is going when the server is told to stop.
    gate = Gate(tmp_path / "slow.fifo", ROWS, delay=0.05)
    post("/sources", {"name": "slow", "kind": "csv", "path": str(gate.path), "header": False,
                      "fields": ["id", "first", "last"]})
    post("/jobs", {"name": "slow", **PEOPLE_JOB, "source": "slow"})
    gate.serve(1)
    gate.open()
    slow = post("/jobs/slow/run", {})
    gate.wait_reading()
    assert client.get(slow.headers["Location"]).json()["run"]["state"] == "running"

    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=60) == 0
    assert served.wait_for("idsync stopped", timeout=10)

    ws = Workspace(principal=Principal.system("test"), database_url=f"sqlite:///{served.home / 'idsync.db'}")
    os.environ["IDSYNC_HOME"] = str(served.home)
    try:
        runs = history.list_runs(ws, limit=50)
        assert [r for r in runs if r.state.value in ("running", "pending", "queued")] == []
        stopped = next(r for r in runs if r.job_name == "slow")
        assert stopped.state.value == "terminated", stopped
        assert json.dumps(stopped.counts.to_dict())
    finally:
        os.environ.pop("IDSYNC_HOME", None)
        ws.close()
