"""Checking the audit trails: nothing edited, deleted or slipped in [S7.7].

The audit log and the decision trail are hash-chained
(:mod:`idsync.store.chain`) and the database refuses UPDATE and DELETE on
them; someone with direct access to the database can still get past the
refusal, and this check is what finds it. It reads everything, so it needs
the auditor role (which administrators hold too).

Each trail's head hash is reported so an administrator can keep it outside
idsync (a ticket, a notebook, another system): a later check given those
heads fails unless each is still the hash of some entry, which catches even
a rewrite of the whole end of a trail together with its head.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from idsync.domain.roles import Role
from idsync.errors import ConfigError, quoted
from idsync.services.authz import require
from idsync.services.workspace import Workspace
from idsync.store import audit

_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class TrailCheck:
    """One trail: its name and table, how many entries, its last entry and head hash, what is wrong."""

    name: str
    table: str
    entries: int
    last_id: int | None
    head: str
    faults: tuple[str, ...]


@dataclass(frozen=True)
class AuditCheck:
    """Every trail checked; heads looked for that no entry has any more; intact when nothing is wrong."""

    trails: tuple[TrailCheck, ...]
    missing_heads: tuple[str, ...]
    intact: bool

    @property
    def problems(self) -> tuple[str, ...]:
        """Every fault, one line each: those of the trails, then the heads not found."""
        missing = tuple(
            f"head {head} written down earlier is no longer in any trail: entries up to it were rewritten"
            for head in self.missing_heads
        )
        return tuple(fault for trail in self.trails for fault in trail.faults) + missing


def verify(ws: Workspace, *, heads: Collection[str] = ()) -> AuditCheck:
    """Check every audit trail; *heads* are head hashes reported by an earlier check."""
    require(ws, Role.AUDITOR, "verify the audit trail")
    wanted = [head.strip().lower() for head in heads]
    for head in wanted:
        if not _HASH.fullmatch(head):
            raise ConfigError(
                f"head {quoted(head)} is not a head hash", field="head",
                hint="give the 64 hexadecimal digits an earlier check reported",
            )
    with ws.db.session() as session:
        reports = audit.verify_trails(session, look_for=wanted)
    found = set().union(*(report.found for report in reports.values()))
    trails = tuple(
        TrailCheck(name, r.table, r.count, r.last_id, r.head_hash, tuple(f.message for f in r.faults))
        for name, r in reports.items()
    )
    missing = tuple(dict.fromkeys(head for head in wanted if head not in found))
    return AuditCheck(trails, missing, intact=not missing and all(not t.faults for t in trails))
