"""Keyset pagination: the rows after a position in a newest-first list.

A list ordered by ``(created_at DESC, id DESC)`` continues after its last
row ``(at, id)`` with the rows strictly older than that position: this
condition, which an index on the time column serves. Unlike an OFFSET, the
database never reads the rows of the pages before, and a row inserted
meanwhile neither shifts nor repeats an item.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.sql.elements import ColumnClause

Position = tuple[datetime, int]
"""The sort key and id of the last row of a page."""


def older_than(at: ColumnElement[datetime] | ColumnClause[datetime], ident: ColumnElement[int] | ColumnClause[int],
               before: Position) -> ColumnElement[bool]:
    """Rows after *before* in ``(at DESC, id DESC)`` order."""
    moment, last_id = before
    return or_(at < moment, and_(at == moment, ident < last_id))
