"""What each smart group update did, per run and group (table ``smart_group_results``).

The counts are whole; the DNs added and removed are kept up to
:data:`MAX_DNS_KEPT` each, enough to answer "who was added last night"
without storing a 50,000-member group twice per run.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from idsync.store.tables import runs, smart_group_results

MAX_DNS_KEPT = 1000


@dataclass(frozen=True)
class GroupResult:
    """One group's outcome in one run: ``updated``, ``unchanged``, ``refused`` or ``failed``."""

    group: str
    dn: str
    outcome: str
    members: int = 0
    added: int = 0
    removed: int = 0
    added_dns: list[str] = field(default_factory=list)
    removed_dns: list[str] = field(default_factory=list)
    error: str | None = None


class SmartGroupResultRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, run_id: int, results: Sequence[GroupResult]) -> None:
        if not results:
            return
        self._session.execute(insert(smart_group_results), [
            {
                "run_id": run_id, "group_name": r.group, "group_dn": r.dn, "outcome": r.outcome,
                "members": r.members, "added": r.added, "removed": r.removed,
                "added_dns": r.added_dns[:MAX_DNS_KEPT], "removed_dns": r.removed_dns[:MAX_DNS_KEPT],
                "error": r.error,
            }
            for r in results
        ])

    def of_run(self, run_id: int) -> builtins.list[GroupResult]:
        query = select(smart_group_results).where(smart_group_results.c.run_id == run_id).order_by(
            smart_group_results.c.id
        )
        return [_result(row) for row in self._session.execute(query)]

    def latest(self, groups: Sequence[str] | None = None, *, runs_back: int = 200) -> dict[str, tuple[int, GroupResult]]:
        """The newest result of each group (of *groups*, or all) among the last
        *runs_back* smart group runs: group name -> (run id, result)."""
        recent = select(runs.c.id).where(runs.c.kind == "smartgroup").order_by(runs.c.id.desc()).limit(runs_back)
        query = select(smart_group_results).where(smart_group_results.c.run_id.in_(recent.scalar_subquery()))
        if groups is not None:
            query = query.where(smart_group_results.c.group_name.in_(list(groups)))
        found: dict[str, tuple[int, GroupResult]] = {}
        for row in self._session.execute(query.order_by(smart_group_results.c.id.desc())):
            if row.group_name not in found:
                found[row.group_name] = (row.run_id, _result(row))
        return found


def _result(row: Any) -> GroupResult:
    return GroupResult(
        group=row.group_name, dn=row.group_dn, outcome=row.outcome, members=row.members,
        added=row.added, removed=row.removed, added_dns=list(row.added_dns or []),
        removed_dns=list(row.removed_dns or []), error=row.error,
    )
