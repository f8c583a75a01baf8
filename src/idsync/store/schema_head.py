"""The schema revision this idsync ships, and the database's, read without Alembic.

Every command opens the database and checks its schema first. Alembic takes
a good part of a second to import and to load its scripts, which a command
such as ``idsync store list`` would otherwise spend on each start. The
common case, a database already at the shipped head, needs neither: the head
is read from the revision files' headers, the database's revision from its
``alembic_version`` row. Anything else (an empty database, another revision,
headers this reader does not understand) goes to Alembic as before; a unit
test keeps the two readers in agreement.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, inspect, text

_REVISION = re.compile(r'^revision(?:\s*:\s*str)?\s*=\s*"(\w+)"\s*$', re.M)
_DOWN = re.compile(r'^down_revision(?:\s*:[^=]+)?\s*=\s*(?:"(\w+)"|None)\s*$', re.M)


@cache
def shipped_head(versions: Path) -> str | None:
    """The one revision of *versions* that no other revision follows, or None
    when the files do not say it plainly (a branch, a merge, another layout)."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for script in versions.glob("*.py"):
        header = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(header), _DOWN.search(header)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        if down.group(1):
            followed.add(down.group(1))
    heads = revisions - followed
    return heads.pop() if len(heads) == 1 else None


def recorded_revision(conn: Connection) -> str | None:
    """The revision in the database's ``alembic_version`` table; None when there
    is no such table or row (never migrated, or not an idsync database)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None
