"""P1–P3: the portal's busiest pages over a large history.

A workspace (SQLite, as ``idsync serve`` uses by default) holds 100,000
runs and 10,000 requests, inserted in bulk through the store's tables (a
benchmark's shortcut: no job runs to make them). The runs span 60 days,
about 1,700 of them in the last 24 hours, in the mix of states a busy
installation has (some failed, some held); one request in a hundred is
pending, each for a collection of its own, so an approver's inbox holds a
hundred.

Then the pages are fetched through the served app in-process (the ASGI app
``idsync serve`` runs, driven by Starlette's test client, so no network or
process start-up is timed), signed in as a user who is an admin and an
approver (the dashboard shows the inbox count and the pending requests):

- P1 the dashboard ``/``;
- P2 the run history ``/runs``;
- P3 the requests inbox ``/requests``.

Each is fetched a few times untimed, then *requests* times; the median and
the 95th percentile are kept. Targets: median under 200 ms, p95 under 500 ms.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from benchmarks.workloads import Row
from idsync.api.auth import SESSION_COOKIE
from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.portal import create_site
from idsync.services import definitions, users
from idsync.services import requests as requests_service
from idsync.services.workspace import Workspace
from idsync.store.tables import requests, runs

RUNS = 100_000
REQUESTS = 10_000
PENDING_EVERY = 100
"""One request in this many is pending (each for a collection of its own)."""
SPAN = timedelta(days=60)
BATCH = 5_000
WARMUP = 3
MEDIAN_TARGET_MS = 200.0
P95_TARGET_MS = 500.0
PAGES = {"P1": ("dashboard", "/"), "P2": ("run history", "/runs"), "P3": ("requests inbox", "/requests")}

STATES = (["succeeded"] * 80 + ["completed_with_errors"] * 8 + ["failed"] * 6 + ["held"] * 1
          + ["terminated"] * 2 + ["skipped"] * 3)
CLOSED = ["executed"] * 6 + ["denied"] * 2 + ["expired"] * 1 + ["cancelled"] * 1
JOBS = [f"job-{i:02d}" for i in range(40)]
COLLECTIONS = [f"collection-{i:02d}" for i in range(20)]


def _run_rows(now: datetime, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Runs oldest first (ids grow with time, as they do when recorded)."""
    step = SPAN / RUNS
    for i in range(RUNS):
        created = now - SPAN + step * i
        state = rng.choice(STATES)
        collection = i % 3 == 0
        yield {
            "kind": "collection" if collection else "job",
            "job_name": rng.choice(COLLECTIONS if collection else JOBS),
            "collection_name": None,
            "state": state, "trigger": rng.choice(["schedule", "manual"]), "requested_by": "scheduler",
            "created_at": created, "started_at": created, "finished_at": created + timedelta(seconds=40),
            "counts": {"read": 1000, "created": 3, "updated": 20, "unchanged": 977,
                       "errors": 2 if state != "succeeded" else 0},
            "error": "the source could not be read" if state == "failed" else None,
        }


def _request_rows(now: datetime, run_ids: list[int], rng: random.Random) -> Iterator[dict[str, Any]]:
    step = SPAN / REQUESTS
    for i in range(REQUESTS):
        created = now - SPAN + step * i
        pending = i % PENDING_EVERY == PENDING_EVERY - 1
        yield {
            "run_id": rng.choice(run_ids), "collection_name": f"gated-{i}", "store_name": "dir",
            "kind": "schedule", "reason": "the collection needs an approval", "requested_by": "scheduler",
            "state": "pending" if pending else rng.choice(CLOSED), "required_approvals": 1,
            "created_at": created, "expires_at": now + timedelta(days=7) if pending else created + timedelta(days=7),
            "closed_at": None if pending else created + timedelta(hours=3),
        }


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(ws: Workspace, root: Path) -> dict[str, float]:
    """The store, the user, the runs and the requests; seconds each part took."""
    system = ws.acting_as(Principal.system("benchmark"))
    for name in ("ann", "bea"):
        users.add_user(system, name, password="a long benchmark password",
                       roles=(Role.ADMIN, Role.OPERATOR, Role.APPROVER), email=f"{name}@example.org")
    definitions.save(system, "store", definitions.parse("store", {
        "name": "dir", "kind": "local", "path": str(root / "dir.db"), "suffix": "dc=example,dc=org",
        "workflow": {"manual": True, "approvers": ["ann", "bea"], "required_approvals": 1},
    }))
    rng = random.Random(14)
    now = datetime.now(UTC)
    took: dict[str, float] = {}
    started = time.perf_counter()
    with ws.db.engine.begin() as conn:
        for batch in _batches(_run_rows(now, rng)):
            conn.execute(insert(runs), batch)
    took["insert_runs_s"] = time.perf_counter() - started
    started = time.perf_counter()
    with ws.db.engine.begin() as conn:
        run_ids = list(conn.execute(select(runs.c.id)).scalars())
        for batch in _batches(_request_rows(now, run_ids, rng)):
            conn.execute(insert(requests), batch)
        counted = conn.execute(select(func.count()).select_from(requests)).scalar_one()
    took["insert_requests_s"] = time.perf_counter() - started
    assert counted == REQUESTS and len(run_ids) == RUNS
    inbox = requests_service.inbox_count(ws.acting_as(Principal("ann", "user")))
    assert inbox == REQUESTS // PENDING_EVERY, f"the approver's inbox holds {inbox} requests"
    took["inbox"] = inbox
    return took


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def portal(workdir: Path, requests_per_page: int = 50) -> tuple[list[Row], dict[str, Any]]:
    """P1–P3's rows and figures, in a fresh workspace under *workdir*."""
    root = workdir / "portal"
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(principal=Principal.system("benchmark"), database_url=f"sqlite:///{root / 'idsync.db'}")
    figures: dict[str, Any] = {"runs": RUNS, "requests": REQUESTS, "requests_per_page": requests_per_page}
    rows: list[Row] = []
    try:
        figures |= fill(ws, root)
        app = create_site(ws)
        cookie, _session = app.state.idsync.sessions.issue("ann")
        with TestClient(app, base_url="http://127.0.0.1") as client:
            client.cookies.set(SESSION_COOKIE, cookie)
            for workload, (label, path) in PAGES.items():
                times: list[float] = []
                for i in range(WARMUP + requests_per_page):
                    started = time.perf_counter()
                    answer = client.get(path)
                    elapsed = (time.perf_counter() - started) * 1000
                    if answer.status_code != 200:
                        raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:500]}")
                    if i >= WARMUP:
                        times.append(elapsed)
                median, p95 = statistics.median(times), _percentile(times, 0.95)
                figures[workload] = {"page": path, "median_ms": median, "p95_ms": p95, "max_ms": max(times),
                                     "bytes": len(answer.content)}
                rows.append(Row(workload, f"{label} {path}: median ms", median, target=f"<{MEDIAN_TARGET_MS:g}",
                                met=median < MEDIAN_TARGET_MS))
                rows.append(Row(workload, f"{label} {path}: p95 ms", p95, target=f"<{P95_TARGET_MS:g}",
                                met=p95 < P95_TARGET_MS))
    finally:
        ws.close()
    return rows, figures
