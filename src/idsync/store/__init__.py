"""The idsync database: schema, migrations, repositories and secrets at rest.

Services open a :class:`Database`, call :meth:`Database.ensure_schema` once,
then work inside ``with db.session() as session:`` through the repositories,
which take that session so several writes commit (or roll back) together.
"""

from __future__ import annotations

from idsync.store.audit import AuditEntry, list_entries, record
from idsync.store.db import Database
from idsync.store.definitions_repo import DefinitionRepository, StoredDefinition
from idsync.store.plans_repo import PlanRepository, PlanRow
from idsync.store.runs_repo import LogLine, RunRepository, RunRow
from idsync.store.secrets import SecretBox, redact, resolve_secret
from idsync.store.serialize import change_from_json, change_to_json

__all__ = [
    "AuditEntry",
    "Database",
    "DefinitionRepository",
    "LogLine",
    "PlanRepository",
    "PlanRow",
    "RunRepository",
    "RunRow",
    "SecretBox",
    "StoredDefinition",
    "change_from_json",
    "change_to_json",
    "list_entries",
    "record",
    "redact",
    "resolve_secret",
]
