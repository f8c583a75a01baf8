"""Checking a job definition before anything runs.

Structure is checked by pydantic when the definition is parsed; this module
checks what needs more: that the store and source exist, that every mapping,
transform, expression, DN and filter compiles, that the source has the
fields the mappings read, and that the destination schema has the
attributes and object classes the job writes.
"""

from __future__ import annotations

from collections.abc import Mapping

from idsync.connectors.base import DirectorySchema, Source
from idsync.domain.definitions import JobDefinition
from idsync.domain.dn import parse_dn
from idsync.domain.filters import parse_filter
from idsync.engine.context import RunContext
from idsync.engine.mapping import Mapper
from idsync.errors import ConfigError, NotFoundError
from idsync.services import definitions
from idsync.services.workspace import Workspace


def check_offline(ws: Workspace, job: JobDefinition, pending: Mapping[str, set[str]] | None = None) -> None:
    """Everything that needs no connection; raises ConfigError naming the job.

    *pending* names stores and sources about to be saved with the job (from
    the same file), which count as existing.
    """
    label = f"job {job.name!r}"
    for kind, name in (("store", job.destination.store), ("source", job.source.data_source)):
        if pending and name in pending.get(kind, set()):
            continue
        try:
            definitions.load(ws, kind, name)  # type: ignore[arg-type]
        except NotFoundError as exc:
            raise ConfigError(f"{label}: {exc.message}") from exc
    dest = job.destination
    dns = {"destination.container": dest.container, "destination.base_dn": dest.base_dn}
    dns["actions.move_to"] = job.actions.move_to
    for member in (m for m in job.mappings if m.members):
        assert member.members is not None
        dns[f"mapping {member.attribute!r} members.base_dn"] = member.members.base_dn
    for where, dn in dns.items():
        if dn is not None:
            try:
                parse_dn(dn)
            except ConfigError as exc:
                raise ConfigError(f"{label}: {where}: {exc.message}") from exc
    filters = {"destination.filter": dest.filter}
    filters.update({f"mapping {m.attribute!r} members.filter": m.members.filter for m in job.mappings if m.members})
    for where, text in filters.items():
        if text:
            try:
                parse_filter(text)
            except ConfigError as exc:
                raise ConfigError(f"{label}: {where}: {exc.message}") from exc
    try:
        Mapper(job, RunContext.create(job.name))
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc.message}") from exc


def check_source_fields(job: JobDefinition, source: Source) -> None:
    """Every field a mapping reads must be a column of the source."""
    columns_of = getattr(source, "columns", None)
    if columns_of is None:
        return
    columns = list(columns_of())
    known = set(columns)
    for m in job.mappings:
        used = [m.source] if m.source is not None else list(m.join.fields) if m.join else []
        for name in used:
            if name not in known:
                raise ConfigError(
                    f"job {job.name!r}: mapping {m.attribute!r} reads field {name!r}, which source "
                    f"{job.source.data_source!r} does not have (fields: {', '.join(columns)})"
                )


def check_schema(job: JobDefinition, schema: DirectorySchema | None) -> None:
    """The destination schema must know every class and attribute the job writes."""
    if schema is None:
        return
    label = f"job {job.name!r}"
    classes = job.destination.classes
    try:
        allowed = schema.allowed_attributes(classes)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc.message} of store {job.destination.store!r}") from exc
    extensible = any(c.lower() == "extensibleobject" for c in classes)
    extra = {job.actions.disable_with.attribute} if job.actions.disable_with else set()
    for name in [m.attribute for m in job.mappings] + sorted(extra):
        at = schema.attribute(name)
        if at is None:
            raise ConfigError(
                f"{label}: attribute {name!r} is not in the schema of store {job.destination.store!r}"
            )
        if not extensible and at.name.lower() not in allowed:
            raise ConfigError(
                f"{label}: attribute {name!r} is not allowed by object classes {', '.join(classes)}"
            )
        if at.no_user_modification:
            raise ConfigError(f"{label}: attribute {name!r} is operational and cannot be written")
