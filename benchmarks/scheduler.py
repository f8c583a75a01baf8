"""W10: several schedulers and workers on PostgreSQL, checked from the database.

Three ``idsync scheduler --workers=external`` processes and two ``idsync
worker`` processes share one PostgreSQL database holding *schedules*
schedules, each firing every minute (cron ``* * * * *``) for its own
collection of one job. After *minutes* of schedule time the schedulers are
stopped, the workers finish what waits, and the database is read:

- every occurrence due in the span was recorded once (the table's unique
  key), none missed, with no gap between a schedule's first and last;
- every occurrence has exactly one run, and it ran (succeeded);
- no collection ever had two runs at once (their spans never overlap);
- the scheduler lag: from an occurrence's due time to its run recorded,
  claimed and deferred by a scheduler, p50 and p95 (target: p95 under 2 s);
  and, apart, the wait for a worker: from the due time to the run's start on
  a worker (it grows with the work per minute over the workers' throughput).

With ``speed`` above 1 the schedulers look at the schedules through a
faster clock (settings ``clock_speed`` and ``clock_start``, for tests): a
minute of schedule time passes in ``60 / speed`` real seconds, while runs,
leases and the lag keep real time. With ``kill_after`` one scheduler is
killed (SIGKILL) that many seconds after *start*, and another started in
its place: a run it had claimed but not yet deferred is marked failed (node
lost) once its *lease* runs out, and its collection's next runs wait for
that (a short lease in CI keeps them from being skipped).

``python -m benchmarks --only scheduler --pg-url URL`` runs it in real time
(five minutes and more); the CI test runs it faster and shorter.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from idsync.domain.principals import Principal
from idsync.services import definitions
from idsync.services.workspace import Workspace

SUFFIX = "dc=example,dc=org"


@dataclass
class ScaleResult:
    """What W10 found in the database."""

    schedules: int
    span_minutes: float
    occurrences: int = 0
    expected_min: int = 0
    runs_by_state: dict[str, int] = field(default_factory=dict)
    missed: int = 0
    gaps: list[str] = field(default_factory=list)
    not_once: list[str] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    """Seconds from each occurrence's due time to its run recorded and deferred."""
    pickup: list[float] = field(default_factory=list)
    """Seconds from each occurrence's due time to its run started on a worker."""
    killed: str | None = None
    lost_on_killed: int = 0
    outputs: list[str] = field(default_factory=list)

    def percentile(self, p: float, of: list[float] | None = None) -> float:
        values = self.lag if of is None else of
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def problems(self) -> list[str]:
        """Each way the run broke the guarantees; empty when it kept them."""
        found = []
        if self.occurrences < self.expected_min:
            found.append(f"{self.occurrences} occurrences recorded, at least {self.expected_min} expected")
        if self.missed:
            found.append(f"{self.missed} occurrences recorded missed")
        found += self.gaps + self.not_once + self.overlaps
        unexpected = {s: n for s, n in self.runs_by_state.items() if s != "succeeded"}
        if unexpected.get("failed", 0) == self.lost_on_killed and self.lost_on_killed:
            unexpected.pop("failed")  # claimed by the killed scheduler, not yet deferred: marked node lost
        if unexpected:
            found.append(f"runs not succeeded: {unexpected}")
        return found

    def summary(self) -> str:
        return (
            f"W10 {self.schedules} schedules x {self.span_minutes:g} min: {self.occurrences} occurrences, runs "
            f"{dict(sorted(self.runs_by_state.items()))}, lag p50 {self.percentile(50):.2f} s, "
            f"p95 {self.percentile(95):.2f} s, max {max(self.lag, default=float('nan')):.2f} s; wait for a worker "
            f"p50 {self.percentile(50, self.pickup):.2f} s, p95 {self.percentile(95, self.pickup):.2f} s"
            + (f"; killed {self.killed} ({self.lost_on_killed} of its runs lost)" if self.killed else "")
        )


def prepare(root: Path, url: str, schedules: int, *, overlap: str = "skip") -> Workspace:
    """The installation: an embedded directory, *schedules* jobs of one person
    each (jobs never share: a job runs once at a time), a collection of each
    (with *overlap*) and a schedule firing every minute for each; the job queue installed."""
    root.mkdir(parents=True, exist_ok=True)
    os.environ["IDSYNC_HOME"] = str(root / "home")
    ws = Workspace(database_url=url, principal=Principal("bench"))
    save = _saver(ws)
    save("store", {"name": "dir", "kind": "local", "path": str(root / "dir.db"), "suffix": SUFFIX})
    (root / "ous.csv").write_text("ou\nPeople\n", encoding="utf-8")
    save("source", {"name": "ous", "kind": "csv", "path": str(root / "ous.csv")})
    save("job", {
        "name": "ou", "source": "ous",
        "destination": {"store": "dir", "container": SUFFIX, "scope": "one", "object_type": "custom",
                        "object_classes": ["top", "organizationalUnit"], "rdn_attribute": "ou"},
        "mappings": [{"attribute": "ou", "from": "ou", "key": True}],
    })
    from idsync.services import jobs

    jobs.run_job(ws, "ou")
    for n in range(schedules):
        path = root / f"p{n}.csv"
        path.write_text(f"id,first,last\n{n},First{n},Last{n}\n", encoding="utf-8")
        save("source", {"name": f"p{n}", "kind": "csv", "path": str(path)})
        save("job", {
            "name": f"p{n}", "source": f"p{n}",
            "destination": {"store": "dir", "container": f"ou=People,{SUFFIX}"},
            "mappings": [
                {"attribute": "uid", "from": "id", "key": True},
                {"attribute": "cn", "join": {"fields": ["first", "last"]}},
                {"attribute": "sn", "from": "last"},
            ],
        })
        save("schedule", {"name": f"s{n}", "triggers": [{"kind": "cron", "expression": "* * * * *", "start": "2020-01-01T00:00"}]})
        save("collection", {"name": f"c{n}", "jobs": [f"p{n}"], "schedule": f"s{n}", "overlap": overlap})
    done = subprocess.run([sys.executable, "-m", "idsync", "db", "upgrade"], env=_env(root, url), capture_output=True,
                          text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"idsync db upgrade failed: {done.stderr.strip()}")
    return ws


def _saver(ws: Workspace) -> Any:
    def save(kind: str, data: dict[str, Any]) -> None:
        definitions.save(ws, kind, definitions.parse(kind, data))  # type: ignore[arg-type]

    return save


def _env(root: Path, url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_")}
    env |= {"IDSYNC_HOME": str(root / "home"), "IDSYNC_DATABASE_URL": url}
    env |= {f"IDSYNC_{name.upper()}": value for name, value in settings.items()}
    return env


def _start(root: Path, url: str, args: list[str], settings: dict[str, str]) -> subprocess.Popen[str]:
    log = open(root / f"{args[0]}-{args[args.index('--node') + 1]}.log", "w", encoding="utf-8")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "idsync", *args], env=_env(root, url, **settings),
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def run_scale(
    root: Path,
    url: str,
    *,
    schedules: int = 200,
    minutes: float = 5,
    speed: float = 1.0,
    schedulers: int = 3,
    workers: int = 2,
    concurrency: int = 4,
    tick: float = 1.0,
    kill_after: float | None = None,
    startup: float = 10.0,
    lease: float = 60.0,
    overlap: str = "skip",
) -> ScaleResult:
    """W10 on the empty PostgreSQL database *url*; what the database shows afterwards.

    With *overlap* ``queue`` an occurrence that finds its collection's
    previous run still waiting for a worker (a busy machine, a faster clock)
    waits behind it instead of being skipped: it still runs, once, after it."""
    ws = prepare(root, url, schedules, overlap=overlap)
    # Runs look at the real clock; schedules at the (maybe faster) one, from *start* on: once every
    # process has started (a Python process takes seconds to start on a busy machine).
    start = datetime.now(UTC) + timedelta(seconds=startup)
    settings = {"clock_speed": f"{speed:g}", "clock_start": f"{start.timestamp():.3f}"}
    wall = startup + minutes * 60 / speed
    def scheduler(node: str) -> subprocess.Popen[str]:
        return _start(root, url, ["scheduler", "--workers", "external", "--tick", f"{tick:g}", "--lease", f"{lease:g}",
                                  "--node", node, "--no-outbox"], settings)

    nodes = [scheduler(f"scheduler-{n}") for n in range(schedulers)]
    pool = [
        _start(root, url, ["worker", "--concurrency", str(concurrency), "--lease", f"{lease:g}", "--node",
                           f"worker-{n}"], settings)
        for n in range(workers)
    ]
    result = ScaleResult(schedules, minutes)
    began = time.monotonic()
    try:
        if kill_after is not None:
            time.sleep(max(0.0, startup + kill_after - (time.monotonic() - began)))
            victim = nodes[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            result.killed = "scheduler-0"
            nodes[0] = scheduler("scheduler-new")
        time.sleep(max(0.0, wall + 2 - (time.monotonic() - began)))
        end = datetime.now(UTC)
        _terminate(nodes)
        _drain(url, timeout=120)
    finally:
        _terminate(nodes + pool)
        ws.close()
    _check(result, url, start, end, speed)
    return result


def _terminate(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _drain(url: str, timeout: float) -> None:
    """Wait until no run job waits and no run is running."""
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                waiting = conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")).scalar_one()
                running = conn.execute(text("SELECT count(*) FROM runs WHERE state = 'running'")).scalar_one()
            if not waiting and not running:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()


def _real(due: datetime, start: datetime, speed: float) -> datetime:
    """The real instant at which the fast clock showed *due*."""
    return start + (due - start) / speed


def _check(result: ScaleResult, url: str, start: datetime, end: datetime, speed: float) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            occurrences = conn.execute(text(
                "SELECT id, schedule_name, due_at, state FROM schedule_occurrences ORDER BY schedule_name, due_at"
            )).all()
            runs = conn.execute(text(
                "SELECT id, collection_name, occurrence_id, state, error, node, created_at, started_at, finished_at "
                "FROM runs WHERE kind = 'collection'"
            )).all()
    finally:
        engine.dispose()
    fast_end = start + (end - start) * speed
    # Minutes fully inside the span; the first and the last may fall either side of it.
    result.expected_min = result.schedules * max(0, int((fast_end - start).total_seconds() // 60) - 1)
    result.occurrences = len(occurrences)
    result.missed = sum(1 for o in occurrences if o.state == "missed")
    by_schedule: dict[str, list[datetime]] = defaultdict(list)
    for o in occurrences:
        by_schedule[o.schedule_name].append(o.due_at)
    for name, dues in by_schedule.items():
        for before, after in itertools.pairwise(dues):
            if after - before != timedelta(minutes=1):
                result.gaps.append(f"schedule {name}: {before:%H:%M} then {after:%H:%M}")
    per_occurrence: dict[int, list[Any]] = defaultdict(list)
    for run in runs:
        per_occurrence[run.occurrence_id].append(run)
    due_of = {o.id: o.due_at for o in occurrences}
    for o in occurrences:
        if len(per_occurrence.get(o.id, [])) != 1:
            result.not_once.append(f"occurrence {o.id} of {o.schedule_name} has {len(per_occurrence.get(o.id, []))} runs")
    states: dict[str, int] = defaultdict(int)
    spans: dict[str, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    for run in runs:
        states[run.state] += 1
        if run.state == "failed" and result.killed and run.node == result.killed:
            result.lost_on_killed += 1
        if run.started_at is not None and run.finished_at is not None:
            spans[run.collection_name].append((run.started_at, run.finished_at, run.id))
        if run.occurrence_id in due_of:
            due = _real(due_of[run.occurrence_id], start, speed)
            result.lag.append((run.created_at - due).total_seconds())
            if run.state == "succeeded" and run.started_at is not None:
                result.pickup.append((run.started_at - due).total_seconds())
    result.runs_by_state = dict(states)
    for name, items in spans.items():
        items.sort()
        for (_s1, f1, id1), (s2, _f2, id2) in itertools.pairwise(items):
            if s2 < f1:
                result.overlaps.append(f"collection {name}: runs {id1} and {id2} overlap")


def fresh_database(server_url: str) -> tuple[str, Any]:
    """A new empty database on the PostgreSQL server *server_url*, and how to drop it."""
    parsed = make_url(server_url)
    name = f"idsync_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return parsed.set(database=name).render_as_string(hide_password=False), drop


def w10(workdir: Path, server_url: str, *, schedules: int, minutes: float, speed: float) -> ScaleResult:
    """W10 in a database of its own on *server_url*, dropped afterwards."""
    url, drop = fresh_database(server_url)
    try:
        return run_scale(workdir / "w10", url, schedules=schedules, minutes=minutes, speed=speed)
    finally:
        drop()


@dataclass
class TickCost:
    """One scheduler tick finding every schedule due at once, timed."""

    schedules: int
    fired: int
    seconds: float
    deferred: int = 0
    """Run jobs waiting in the queue afterwards (one per occurrence fired)."""

    @property
    def ms_per_fire(self) -> float:
        return 1000 * self.seconds / self.fired if self.fired else float("nan")

    def summary(self) -> str:
        return (f"W10 tick: {self.fired} of {self.schedules} occurrences fired ({self.deferred} runs deferred) in one "
                f"tick in {self.seconds:.2f} s, {self.ms_per_fire:.1f} ms per fire")


def tick_cost(workdir: Path, server_url: str, *, schedules: int) -> TickCost:
    """One scheduler (deferring to the job queue, no worker) ticking once when
    all of *schedules* schedules are due at the same minute, in a database of
    its own on *server_url*: how long the tick took, per occurrence fired."""
    from idsync.runtime.scheduler import Scheduler
    from idsync.runtime.worker import QueueExecutor
    from idsync.services.collection_runs import Runtime

    url, drop = fresh_database(server_url)
    try:
        ws = prepare(workdir / "w10-tick", url, schedules)
        try:
            due = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
            runtime = Runtime(node="bench-tick")
            executor = QueueExecutor(ws, runtime)
            scheduler = Scheduler(ws, executor, runtime, schedule_clock=lambda: due + timedelta(seconds=1))
            began = time.perf_counter()
            report = scheduler.tick()
            seconds = time.perf_counter() - began
            executor.shutdown(5)
            with ws.db.session() as session:
                deferred = session.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"))
                return TickCost(schedules, report.fired, seconds, int(deferred.scalar_one()))
        finally:
            ws.close()
    finally:
        drop()
