"""The lease of a running run, renewed by a heartbeat thread.

A node that claims a run holds it until ``lease_until``; while the run
executes, a heartbeat renews the lease every third of its length. When the
node dies, renewals stop, the lease runs out, and any scheduler marks the run
failed ("node lost"). When a renewal finds that the run was taken over (its
fence moved on), the heartbeat says so through :attr:`Heartbeat.lost`, and
the run stops at its next batch instead of writing over the new owner.

A preview holds a lease on the plan it computes in the same way
(:class:`PreviewHeartbeat`): a plan left computing by a dead process is
marked failed once it runs out.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Self

from sqlalchemy.orm import Session

from idsync.errors import IdsyncError
from idsync.store.db import Database
from idsync.store.plans_repo import PlanRepository
from idsync.store.scheduling_repo import SchedulingRepository
from idsync.store.tables import utcnow

log = logging.getLogger(__name__)

LEASE_LOST = "stopped: this node lost the run's lease (another node took it over)"


def default_node() -> str:
    """This process as a node: host name and process id (two processes are two nodes)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class _Beat:
    """Renews a lease in a background thread every third of its length, while
    a block runs; :attr:`lost` is set when a renewal finds the lease taken."""

    def __init__(self, db: Database, lease: timedelta, name: str, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.lease = lease
        self.clock = clock
        self.interval = max(lease.total_seconds() / 3, 0.05)
        self.lost = threading.Event()
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{name.replace(' ', '-')}", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self, session: Session) -> bool:
        raise NotImplementedError

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.db.session() as session:
                    held = self._renew(session)
            except IdsyncError as exc:
                # The database is unreachable for now: try again at the next beat;
                # if it stays away the lease runs out, which is the right outcome.
                log.warning("%s: lease not renewed: %s", self._name, exc.message)
                continue
            except Exception:
                log.exception("%s: lease not renewed", self._name)
                continue
            if not held:
                self.lost.set()
                return


class Heartbeat(_Beat):
    """Renews the lease of one run in a background thread while it executes."""

    def __init__(
        self,
        db: Database,
        run_id: int,
        fence: int,
        lease: timedelta,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(db, lease, f"run {run_id}", clock=clock)
        self.run_id = run_id
        self.fence = fence

    def _renew(self, session: Session) -> bool:
        return SchedulingRepository(session, clock=self.clock).renew(self.run_id, self.fence, self.lease)


class PreviewHeartbeat(_Beat):
    """Renews the lease of the plan a preview computes, while it computes."""

    def __init__(self, db: Database, plan_id: int, lease: timedelta, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(db, lease, f"preview of plan {plan_id}", clock=clock)
        self.plan_id = plan_id

    def _renew(self, session: Session) -> bool:
        return PlanRepository(session, clock=self.clock).renew_preview(self.plan_id, self.lease)
