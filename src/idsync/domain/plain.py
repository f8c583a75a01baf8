"""What services return, as JSON-ready data: one set of rules for every front end.

Services return frozen dataclasses, pydantic models, enums and datetimes;
an API answer and the CLI's ``--json`` are plain JSON made by these same
rules, so a script reading either sees the same fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any

from idsync.domain.results import Counts


def to_plain(value: Any) -> Any:
    """Dataclasses, enums, datetimes, sets and pydantic models as JSON-ready data (sets sorted)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if isinstance(value, Counts):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if hasattr(value, "duration_seconds"):
            data["duration_seconds"] = value.duration_seconds
        return data
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((to_plain(v) for v in value), key=str)
    return value
