"""What a node's metrics report, read from the database at scrape time.

Every node reads the same database, so every node reports the same values:
whichever node Prometheus scrapes, and however many nodes ran the runs (a
worker, a scheduler, ``idsync serve``, or a command like ``idsync collection
run`` that exits at once), the figures cover them all.

Gauges (runs by state, outbox messages by state, pending requests, the
workers' queue) are counted at each scrape. Counters (objects changed, record
errors, the run duration histogram) are sums over finished runs; a run's
counts never change once it has finished, so the sums only grow. To keep a
scrape cheap the caller keeps a :class:`Settled` total: runs below the
oldest open run and created more than :data:`SETTLE_AFTER` ago are summed
once, and each later scrape adds only newer runs. idsync never deletes a
finished run; runs deleted from the database by hand lower the sums once the
node restarts, which Prometheus takes as a counter reset.

The read is role-free: it reports counts and durations only, never a name,
an address or a value from a directory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from idsync.services.workspace import Workspace
from idsync.store.metrics_repo import FinishedRun, MetricsRepository
from idsync.store.tables import utcnow

CHANGE_OPERATIONS = ("created", "updated", "deleted", "disabled", "moved")
"""The operations objects changed are counted by."""

DURATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
"""Upper bounds (seconds) of the run duration histogram; a last bucket holds the rest."""

SETTLE_AFTER = timedelta(minutes=5)
"""A run created longer ago than this has committed on every node (ids of
concurrent transactions may become visible out of order): summed once."""

LAG_WINDOW = timedelta(minutes=15)
"""The scheduler's lag is reported over the occurrences due in this window."""

@dataclass(frozen=True)
class Durations:
    """A histogram of run durations: how many fell in each bucket (the last one
    past :data:`DURATION_BUCKETS`), their sum and count."""

    buckets: tuple[int, ...] = (0,) * (len(DURATION_BUCKETS) + 1)
    total: float = 0.0
    count: int = 0

    def add(self, seconds: float) -> Durations:
        index = next((i for i, bound in enumerate(DURATION_BUCKETS) if seconds <= bound), len(DURATION_BUCKETS))
        buckets = list(self.buckets)
        buckets[index] += 1
        return Durations(tuple(buckets), self.total + seconds, self.count + 1)

    def cumulative(self) -> list[tuple[str, int]]:
        """The buckets as Prometheus states them: ``(upper bound, runs at most that long)``, ending with +Inf."""
        bounds = [_bound(b) for b in DURATION_BUCKETS] + ["+Inf"]
        running, out = 0, []
        for bound, n in zip(bounds, self.buckets, strict=True):
            running += n
            out.append((bound, running))
        return out


def _bound(value: float) -> str:
    return f"{value:.1f}" if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class Totals:
    """Sums over finished runs: objects changed by operation, record errors,
    and durations by kind of run."""

    changes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGE_OPERATIONS, 0))
    record_errors: int = 0
    durations: dict[str, Durations] = field(default_factory=dict)

    def plus(self, finished: Iterable[FinishedRun]) -> Totals:
        """These totals with *finished* runs added (the receiver is unchanged)."""
        changes, errors, durations = dict(self.changes), self.record_errors, dict(self.durations)
        for run in finished:
            if run.own_changes:
                for op in CHANGE_OPERATIONS:
                    changes[op] += getattr(run.counts, op)
                errors += run.counts.errors
            if run.started_at is not None and run.finished_at is not None:
                seconds = max((run.finished_at - run.started_at).total_seconds(), 0.0)
                durations[run.kind] = durations.get(run.kind, Durations()).add(seconds)
        return Totals(changes, errors, durations)


@dataclass(frozen=True)
class Settled:
    """The totals of every run up to *through_id*, all finished for good."""

    through_id: int = 0
    totals: Totals = field(default_factory=Totals)


def _summed(repo: MetricsRepository, settled: Settled, through: int) -> Totals:
    """*settled*'s totals with the runs up to *through* added, summed by the
    database (the first read of a node sums every run ever recorded)."""
    changes, errors = repo.sums(settled.through_id, through, CHANGE_OPERATIONS)
    durations = dict(settled.totals.durations)
    for kind, (counts, total) in repo.duration_buckets(settled.through_id, through, DURATION_BUCKETS).items():
        before = durations.get(kind, Durations())
        buckets = tuple(a + b for a, b in zip(before.buckets, counts, strict=True))
        durations[kind] = Durations(buckets, before.total + total, before.count + sum(counts))
    return Totals(
        {op: settled.totals.changes[op] + changes[op] for op in CHANGE_OPERATIONS},
        settled.totals.record_errors + errors,
        durations,
    )


@dataclass(frozen=True)
class Lag:
    """The scheduler's lag (due time to start, seconds) over the recent occurrences."""

    count: int = 0
    p50: float = math.nan
    p95: float = math.nan
    max: float = math.nan

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Lag:
        if not seconds:
            return cls()
        ordered = sorted(seconds)
        return cls(len(ordered), quantile(ordered, 0.5), quantile(ordered, 0.95), ordered[-1])


def quantile(ordered: Sequence[float], q: float) -> float:
    """The *q* quantile of the sorted values *ordered* (nearest rank)."""
    if not ordered:
        return math.nan
    rank = max(math.ceil(q * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Snapshot:
    """Everything a scrape reports, and the settled totals to pass to the next read."""

    runs_by_state: dict[tuple[str, str], int]
    totals: Totals
    outbox: dict[str, int]
    pending_requests: int
    worker_jobs: dict[str, int] | None
    """Waiting (todo) and running (doing) jobs of the workers' queue; None: no such queue."""
    lag: Lag
    settled: Settled


def read(ws: Workspace, settled: Settled | None = None, *, clock: Callable[[], datetime] = utcnow) -> Snapshot:
    """The metrics now, in one transaction; *settled* is what the previous read
    returned (None: sum every finished run)."""
    settled = settled or Settled()
    now = clock()
    with ws.db.session() as session:
        repo = MetricsRepository(session)
        first_open = repo.first_open_run()
        through = repo.last_run_created_before(now - SETTLE_AFTER)
        if first_open is not None:
            through = min(through, first_open - 1)
        if through > settled.through_id:
            settled = Settled(through, _summed(repo, settled, through))
        totals = settled.totals.plus(repo.finished_runs(settled.through_id))
        return Snapshot(
            runs_by_state=repo.runs_by_state(),
            totals=totals,
            outbox=repo.outbox_by_state(),
            pending_requests=repo.pending_requests(),
            worker_jobs=repo.worker_jobs(),
            lag=Lag.of(repo.scheduler_lags(now - LAG_WINDOW)),
            settled=settled,
        )
