"""Cleaning up after processes that died: nothing stays running or computing.

A run holds a lease its process renews, and so does a preview on the plan it
computes. When the process is killed, the renewals stop and the lease runs
out; whoever looks next ends what it left, and queues the notifications
its collection asks for (a *failed* one): a scheduler at every tick, and
any command that starts a run or a preview, lists runs or plans, or shows
one. So a killed ``idsync job run`` or ``idsync job preview`` is reported
failed even where no scheduler runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from idsync.errors import TransientError
from idsync.services import notifications
from idsync.services.workspace import Workspace
from idsync.store.plans_repo import PlanRepository
from idsync.store.scheduling_repo import SchedulingRepository
from idsync.store.tables import utcnow

log = logging.getLogger(__name__)


def expire_lost_runs(ws: Workspace, session: Session, clock: Callable[[], datetime] = utcnow) -> list[int]:
    """Mark failed (node lost) the runs whose lease ran out, in *session*, and
    queue their collections' notifications (a *failed* one where asked for)
    in the same transaction; the ids of the runs marked so."""
    lost = SchedulingRepository(session, clock=clock).expire_leases()
    for run_id in lost:
        notifications.enqueue_run(ws, session, run_id, clock=clock)
    return lost


def reap(ws: Workspace) -> None:
    """Mark failed the runs and previews whose lease ran out (their process
    is gone), with the plans they left: the plans a run was applying are
    ready again, those it or a preview was computing are failed."""
    with ws.db.session() as session:
        expire_lost_runs(ws, session)
        plans = PlanRepository(session)
        plans.release_orphans()
        plans.fail_orphans()
        plans.expire_previews()


def reap_before_reading(ws: Workspace) -> None:
    """:func:`reap`, before a listing or a report; a database locked by another
    process's write does not stop the reading (the next look reaps)."""
    try:
        reap(ws)
    except TransientError as exc:
        log.info("runs and previews left by dead processes not looked for now: %s", exc.message)
