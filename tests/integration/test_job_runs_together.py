"""Two ``run_job`` of one job started together, in two processes, against
slapd: the database lets one run, the other is refused naming it, and every
object is written once (no "Already exists"). On SQLite and on PostgreSQL.

Each process gets ready (imports done, job loaded), says so with a file,
and waits for the go file, written once both are ready: they start within
a few milliseconds of each other, far less than the run takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.services import definitions, jobs
from idsync.services.workspace import Workspace
from idsync.store.runs_repo import RunRepository
from tests.integration.test_store_postgres import Server, server_url
from tests.integration.test_sync_slapd import add_job, add_source, people
from tests.servers.slapd import SlapdServer, operation_counts

PEOPLE = 3000

RUNNER = """
import json, os, sys, time
from idsync.errors import StateConflictError
from idsync.services import jobs
from idsync.domain.principals import Principal
from idsync.services.workspace import Workspace
ready, go = sys.argv[1], sys.argv[2]
ws = Workspace(principal=Principal(os.path.basename(ready)))
jobs.load_job(ws, "people")
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
try:
    run = jobs.run_job(ws, "people")
except StateConflictError as exc:
    print(json.dumps({"refused": exc.message}))
else:
    print(json.dumps({"run": run.id, "state": run.state.value, "counts": run.counts.to_dict()}))
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'idsync.db'}"
        return
    server = Server(server_url())
    url = server.create()
    try:
        yield url
    finally:
        server.drop(url)
        server.admin.dispose()


def start_together(tmp_path: Path, env: dict[str, str], count: int) -> list[dict[str, object]]:
    go = tmp_path / "go"
    readies = [tmp_path / f"ready-{n}" for n in range(count)]
    processes = [
        subprocess.Popen([sys.executable, "-c", RUNNER, str(ready), str(go)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for ready in readies
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in readies):
            assert time.monotonic() < deadline, "the processes did not get ready"
            assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
            time.sleep(0.01)
        go.touch()
        outputs = [p.communicate(timeout=120) for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert all(p.returncode == 0 for p in processes), outputs
    assert all("Traceback" not in err for _, err in outputs), outputs
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


def test_two_runs_of_one_job_started_together_write_once(
    database_url: str, slapd: SlapdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("IDSYNC_HOME", str(home))
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    ws = Workspace(database_url=database_url, principal=Principal("tester"))
    container = slapd.new_container()
    definitions.save(ws, "store", definitions.parse("store", {
        "name": "ldap", "kind": "ldap", "url": slapd.url, "bind_dn": slapd.root_dn, "bind_password": slapd.root_pw,
    }))
    add_source(ws, tmp_path / "hr.csv", people(PEOPLE))
    add_job(ws, container)
    adds = operation_counts(slapd)["Add"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_")}
    env |= {"IDSYNC_HOME": str(home), "IDSYNC_DATABASE_URL": database_url}

    results = start_together(tmp_path, env, 2)

    ran = [r for r in results if "run" in r]
    refused = [r for r in results if "refused" in r]
    assert len(ran) == 1 and len(refused) == 1, results
    assert ran[0]["state"] == "succeeded"
    assert ran[0]["counts"]["created"] == PEOPLE and ran[0]["counts"]["errors"] == 0  # type: ignore[index]
    assert refused[0]["refused"] == f"job 'people' is already running (run {ran[0]['run']})"
    assert operation_counts(slapd)["Add"] == adds + PEOPLE
    with ws.db.session() as session:
        runs = RunRepository(session).list(job_name="people")
    assert [r.state for r in runs] == [RunState.SUCCEEDED]  # the refused start left no run behind
    assert jobs.run_job(ws, "people").counts.unchanged == PEOPLE
    ws.close()
