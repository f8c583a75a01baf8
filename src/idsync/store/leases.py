"""The lease of a running run, renewed by a heartbeat thread.

A node that claims a run holds it until ``lease_until``; while the run
executes, a heartbeat renews the lease every third of its length. When the
node dies, renewals stop, the lease runs out, and any scheduler marks the run
failed ("node lost"). When a renewal finds that the run was taken over (its
fence moved on), the heartbeat says so through :attr:`Heartbeat.lost`, and
the run stops at its next batch instead of writing over the new owner.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from idsync.errors import IdsyncError
from idsync.store.db import Database
from idsync.store.scheduling_repo import SchedulingRepository
from idsync.store.tables import utcnow

log = logging.getLogger(__name__)

LEASE_LOST = "stopped: this node lost the run's lease (another node took it over)"


def default_node() -> str:
    """This process as a node: host name and process id (two processes are two nodes)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
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
        self.db = db
        self.run_id = run_id
        self.fence = fence
        self.lease = lease
        self.clock = clock
        self.interval = max(lease.total_seconds() / 3, 0.05)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.db.session() as session:
                    held = SchedulingRepository(session, clock=self.clock).renew(self.run_id, self.fence, self.lease)
            except IdsyncError as exc:
                # The database is unreachable for now: try again at the next beat;
                # if it stays away the lease runs out, which is the right outcome.
                log.warning("run %s: lease not renewed: %s", self.run_id, exc.message)
                continue
            except Exception:
                log.exception("run %s: lease not renewed", self.run_id)
                continue
            if not held:
                self.lost.set()
                return
