"""The state of an installation at a glance: who acts, what waits, what ran, what is next.

``idsync status`` (and the portal's dashboard after it) answer the first
questions an administrator has: is anything running or failing, what runs
next, do messages wait, and which requests wait for *me*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from idsync.domain.results import RunState
from idsync.domain.roles import Role
from idsync.services import authz, schedules
from idsync.services.workspace import Workspace
from idsync.store.outbox_repo import OutboxRepository
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.store.tables import utcnow

RECENT = timedelta(hours=24)
"""How far back the run counts look."""


@dataclass(frozen=True)
class NextRun:
    schedule: str
    at: datetime
    at_text: str
    targets: list[str]


@dataclass(frozen=True)
class Status:
    """What ``idsync status`` shows."""

    actor: str
    roles: list[str]
    bootstrap: bool
    runs_recent: dict[str, int]
    active: list[RunRow]
    failed: list[RunRow]
    next_runs: list[NextRun]
    outbox: dict[str, int]
    since: datetime
    inbox: int | None = None
    """Requests waiting for this principal's decision (None: it decides none)."""


ACTIVE_STATES = (RunState.RUNNING, RunState.QUEUED, RunState.AWAITING_APPROVAL)


def status(ws: Workspace, *, clock: Callable[[], datetime] = utcnow) -> Status:
    """The installation as the acting principal may see it (any role)."""
    rights = authz.require_any(ws, tuple(Role), "see the status")
    now = clock()
    since = now - RECENT
    with ws.db.session() as session:
        runs = RunRepository(session)
        recent = runs.state_counts(since=since, kind="collection")
        for state, number in runs.state_counts(since=since, kind="job").items():
            recent[state] = recent.get(state, 0) + number
        active = [run for state in ACTIVE_STATES for run in runs.list(state=state, limit=20, kind="collection")]
        failed = [
            run for run in runs.list(state=RunState.FAILED, limit=20)
            if run.created_at >= since and run.parent_run_id is None
        ][:5]
        outbox = OutboxRepository(session).counts()
    upcoming = [
        NextRun(item.name, item.next_run, item.next_run_text, item.targets)
        for item in schedules.status(ws, now=now)
        if item.next_run is not None and item.targets
    ]
    upcoming.sort(key=lambda item: item.at)
    return Status(
        actor=rights.user.name if rights.user is not None else ws.actor,
        roles=sorted(rights.roles),
        bootstrap=rights.bootstrap,
        runs_recent=recent,
        active=active,
        failed=failed,
        next_runs=upcoming[:5],
        outbox=outbox,
        since=since,
    )
