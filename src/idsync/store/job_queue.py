"""The job queue of installations with several nodes: procrastinate, in
idsync's own PostgreSQL database.

A scheduler (or ``idsync serve --workers=external``) claims a run as usual,
then defers a job naming the run and the fence it holds
(:func:`defer_run`); an ``idsync worker`` picks the job, takes the run over
(:meth:`~idsync.store.scheduling_repo.SchedulingRepository.take_over`) and
executes it. The queue carries work, never the guarantee: the database
refuses a second running run of a collection, and the fence refuses a stale
executor's writes, whatever the queue does.

While a job waits for a worker, its run is leased to the node that deferred
it; :func:`keep_waiting_runs` (every scheduler tick, every worker) renews the
leases of runs whose job still waits, so a run waiting in a busy queue is
never taken for lost, and one whose job was never deferred (its node died
in between) is marked failed once its lease runs out.

Procrastinate's schema lives next to idsync's tables and is installed or
upgraded by ``idsync db upgrade`` (:func:`install_schema`): the installed
version is written in a comment on its jobs table, and an upgrade applies
procrastinate's own migration scripts after that version.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from idsync.errors import ConfigError
from idsync.store.db import Database

if TYPE_CHECKING:
    import procrastinate

TASK = "idsync.execute_run"
"""The procrastinate task that executes one claimed collection run (with
``request_id``: the run of an approved request, applying its plans)."""
QUEUE = "runs"
"""The queue runs are deferred to (``idsync worker --queue`` picks others)."""
_MARK = "idsync: procrastinate "
"""Start of the comment on procrastinate_jobs that records the installed version."""
_SCHEMA_LOCK = 0x1D5C_0B5  # an advisory lock: one installer at a time
NOT_POSTGRES = (
    "workers need PostgreSQL: set IDSYNC_DATABASE_URL=postgresql+psycopg://USER@HOST/DATABASE "
    "(this installation uses {url})"
)
"""Why workers (or deferring runs to them) are refused on another database."""


def require_postgres(db: Database) -> None:
    """Refuse workers (and deferring to them) on anything but PostgreSQL."""
    if db.dialect != "postgresql":
        raise ConfigError(NOT_POSTGRES.format(url=db.display_url), hint="or run the runs in the scheduler's own process")


def conninfo(db: Database) -> str:
    """The idsync database URL as libpq understands it (no SQLAlchemy driver name)."""
    return make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(db: Database, *, pool_size: int = 4, sync: bool = False) -> procrastinate.App:
    """A procrastinate app on *db* (PostgreSQL), not opened yet: asynchronous
    (a worker) or, with *sync*, for deferring from ordinary threads.
    (Procrastinate's pools check a connection before lending it, so
    connections cut by a database restart are replaced.)"""
    try:
        import procrastinate
    except ImportError as exc:
        raise ConfigError(f"workers need procrastinate, which is not installed ({exc})",
                          hint="install idsync with its workers extra") from exc

    require_postgres(db)
    most = max(2, pool_size)
    connector: procrastinate.BaseConnector
    if sync:
        connector = procrastinate.SyncPsycopgConnector(
            conninfo=conninfo(db), min_size=1, max_size=most
        )
    else:
        connector = procrastinate.PsycopgConnector(
            conninfo=conninfo(db), min_size=1, max_size=most
        )
    return procrastinate.App(connector=connector)


def defer_run(
    app: procrastinate.App, run_id: int, fence: int, *, queue: str = QUEUE, request_id: int | None = None
) -> int:
    """Queue the execution of claimed run *run_id* (held at *fence*); the job's id.
    With *request_id*, the run applies that approved request's plans.

    The queueing lock is the run's own: the same run is never waiting twice in
    the queue. There is none per collection: the database already serialises
    a collection's runs, and a job left behind by a dead worker must not hold
    up the collection's next run."""
    task = app.configure_task(TASK, queue=queue, queueing_lock=f"run-{run_id}")
    if request_id is None:
        return int(task.defer(run_id=run_id, fence=fence))
    return int(task.defer(run_id=run_id, fence=fence, request_id=request_id))


def defer_runs(app: procrastinate.App, runs: Sequence[tuple[int, int]], *, queue: str = QUEUE) -> list[int]:
    """:func:`defer_run` for several claimed runs (run id, fence) in one
    statement; their jobs' ids. All or none: when one of them waits in the
    queue already, none is deferred (procrastinate's AlreadyEnqueued)."""
    if not runs:
        return []
    jobs = [
        app.configure_task(TASK, queue=queue, queueing_lock=f"run-{run_id}").make_new_job(run_id=run_id, fence=fence)
        for run_id, fence in runs
    ]
    return [int(job.id) for job in app.job_manager.batch_defer_jobs(jobs) if job.id is not None]


def keep_waiting_runs(session: Session, lease: timedelta, now: datetime) -> int:
    """Renew the leases of the runs whose job waits for a worker (status todo),
    at the fence the job names; how many. On a database without the queue's
    tables (never upgraded for workers), nothing."""
    if session.get_bind().dialect.name != "postgresql" or not _has_queue(session.connection()):
        return 0
    # The rows are locked in id order and a row locked by anyone else is left
    # for the next renewal (a third of the lease later): several nodes renew at
    # once, beside take-overs and heartbeats, and must never deadlock them.
    result = session.execute(
        text(
            "UPDATE runs SET lease_until = GREATEST(runs.lease_until, :until), heartbeat_at = :now "
            "WHERE runs.id IN ("
            " SELECT waiting.id FROM runs AS waiting JOIN procrastinate_jobs AS job"
            " ON waiting.id = (job.args->>'run_id')::bigint AND waiting.fence = (job.args->>'fence')::bigint"
            " WHERE job.task_name = :task AND job.status = 'todo' AND waiting.state = 'running'"
            " ORDER BY waiting.id FOR UPDATE OF waiting SKIP LOCKED)"
        ),
        {"until": now + lease, "now": now, "task": TASK},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def still_running(session: Session, run_ids: Sequence[int]) -> set[int]:
    """Those of *run_ids* still marked running (the others ended, or are gone)."""
    if not run_ids:
        return set()
    rows = session.execute(
        text("SELECT id FROM runs WHERE id = ANY(:ids) AND state = 'running'"), {"ids": list(run_ids)}
    )
    return {int(row[0]) for row in rows}


def waiting_jobs(session: Session, queue: str | None = None) -> int:
    """How many run jobs wait for a worker (in *queue*, or in all)."""
    if not _has_queue(session.connection()):
        return 0
    query = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :task AND status = 'todo'"
    params: dict[str, str] = {"task": TASK}
    if queue is not None:
        query += " AND queue_name = :queue"
        params["queue"] = queue
    return int(session.execute(text(query), params).scalar_one())


# ---------------------------------------------------------------- schema


@dataclass(frozen=True)
class SchemaChange:
    """Procrastinate's schema before and after :func:`install_schema`."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def line(self) -> str:
        if not self.changed:
            return f"job queue (procrastinate {self.after}) already up to date"
        if self.before is None:
            return f"job queue installed (procrastinate {self.after})"
        return f"job queue upgraded to procrastinate {self.after} (was {self.before})"


def shipped_version() -> str:
    """The installed procrastinate's version (major.minor.patch)."""
    return metadata.version("procrastinate")


def install_schema(db: Database) -> SchemaChange:
    """Install procrastinate's schema in *db*, or upgrade it to the installed
    procrastinate; nothing when it is there already. One installer at a time."""
    import procrastinate.schema

    require_postgres(db)
    target = shipped_version()
    with db.engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        before = installed_version(conn)
        if before is None:
            _run_script(conn, procrastinate.schema.SchemaManager.get_schema())
        elif _key(before) < _key(target):
            for script in _migrations_after(before, target, Path(procrastinate.schema.migrations_path)):
                _run_script(conn, script.read_text(encoding="utf-8"))
        if before is None or _key(before) < _key(target):
            conn.exec_driver_sql(f"COMMENT ON TABLE procrastinate_jobs IS '{_MARK}{target}'")
    return SchemaChange(before, target if before is None or _key(before) < _key(target) else before)


def installed_version(conn: Connection) -> str | None:
    """The procrastinate version whose schema *conn*'s database holds; None
    when it holds none. A schema installed by other means (no version
    comment) counts as the shipped one: idsync does not guess its history."""
    if not _has_queue(conn):
        return None
    comment = conn.execute(text("SELECT obj_description('procrastinate_jobs'::regclass, 'pg_class')")).scalar_one()
    if isinstance(comment, str) and comment.startswith(_MARK):
        return comment.removeprefix(_MARK)
    return shipped_version()


def _has_queue(conn: Connection) -> bool:
    return conn.execute(text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")).scalar_one() is True


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _migrations_after(before: str, target: str, folder: Path) -> list[Path]:
    """Procrastinate's migration scripts for versions after *before* up to *target*, in order."""
    return [
        script
        for script in sorted(folder.glob("*.sql"))
        if _key(before) < _key(script.name.split("_", 1)[0]) <= _key(target)
    ]


def _run_script(conn: Connection, script: str) -> None:
    """Run an SQL script as it is (no parameter markers: its '%' stay), in *conn*'s transaction."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(script)
    finally:
        cursor.close()
