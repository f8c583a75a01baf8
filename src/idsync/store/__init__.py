"""The idsync database: schema, migrations, repositories and secrets at rest.

Services open a :class:`Database`, call :meth:`Database.ensure_schema` once,
then work inside ``with db.session() as session:`` through the repositories,
which take that session so several writes commit (or roll back) together.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AuditEntry": "idsync.store.audit",
    "list_entries": "idsync.store.audit",
    "record": "idsync.store.audit",
    "Database": "idsync.store.db",
    "DefinitionRepository": "idsync.store.definitions_repo",
    "StoredDefinition": "idsync.store.definitions_repo",
    "PlanRepository": "idsync.store.plans_repo",
    "PlanRow": "idsync.store.plans_repo",
    "LogLine": "idsync.store.runs_repo",
    "RunRepository": "idsync.store.runs_repo",
    "RunRow": "idsync.store.runs_repo",
    "SecretBox": "idsync.store.secrets",
    "redact": "idsync.store.secrets",
    "resolve_secret": "idsync.store.secrets",
    "change_from_json": "idsync.store.serialize",
    "change_to_json": "idsync.store.serialize",
}
"""What this package offers, by the module that defines it. They are loaded on
first use, so that importing one repository does not import them all."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
