"""Runs of job collections: one run row for the collection, one child row per job.

A collection run is a row of ``runs`` with kind ``collection``; each job it
runs (or skips) is a row of kind ``job`` whose ``parent_run_id`` names it.
Rows keep the collection's name, so the history outlives the collection.
Claiming, leases and the overlap rule live in :mod:`idsync.store.scheduling_repo`.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsync.domain.results import Counts, RunState
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.store.tables import runs, utcnow

COLLECTION_KIND = "collection"


class CollectionRunRepository:
    """Reads and writes collection runs; the caller's session decides when it is committed."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock
        self.runs = RunRepository(session, clock=clock)

    def create(
        self,
        *,
        collection_id: int | None,
        collection_name: str,
        trigger: str,
        requested_by: str,
        occurrence_id: int | None = None,
        stop_after: int | None = None,
    ) -> int:
        """A new pending collection run; its id."""
        return self.runs.create(
            kind=COLLECTION_KIND,
            job_name=collection_name,
            job_id=None,
            trigger=trigger,
            requested_by=requested_by,
            collection_id=collection_id,
            collection_name=collection_name,
            occurrence_id=occurrence_id,
            stop_after=stop_after,
        )

    def record_ended(self, run_id: int, state: RunState, reason: str, counts: Counts | None = None) -> None:
        """End a run that never ran (skipped, missed) or never got going, with the reason."""
        self.runs.log(run_id, "warning" if state is not RunState.FAILED else "error", reason)
        self.runs.finish(run_id, state, counts or Counts(), reason)

    def add_child(
        self,
        parent: RunRow,
        *,
        job_name: str,
        job_id: int | None,
        state: RunState,
        reason: str,
    ) -> int:
        """A job run of collection run *parent* that ended before starting
        (skipped after an earlier failure, or a job that could not be loaded)."""
        child = self.runs.create(
            kind="job",
            job_name=job_name,
            job_id=job_id,
            trigger=parent.trigger,
            requested_by=parent.requested_by,
            collection_id=parent.collection_id,
            collection_name=parent.collection_name,
            parent_run_id=parent.id,
            occurrence_id=parent.occurrence_id,
        )
        self.record_ended(child, state, reason)
        return child

    def recent(self, collection_name: str, *, limit: int = 10) -> builtins.list[RunRow]:
        """The newest runs of a collection first."""
        return self.runs.list(limit=limit, collection_name=collection_name, kind=COLLECTION_KIND)

    def last(self, collection_name: str) -> RunRow | None:
        """The newest run of a collection that started (not skipped or missed)."""
        query = (
            select(runs.c.id)
            .where(
                runs.c.kind == COLLECTION_KIND,
                runs.c.collection_name == collection_name,
                runs.c.started_at.is_not(None),
            )
            .order_by(runs.c.started_at.desc(), runs.c.id.desc())
            .limit(1)
        )
        found = self._session.execute(query).scalar_one_or_none()
        return self.runs.get(int(found)) if found is not None else None

    def set_counts(self, run_id: int, counts: Counts) -> None:
        """The aggregated counts of the jobs run so far."""
        self.runs.update_counts(run_id, counts)
