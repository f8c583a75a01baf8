"""Checking a job definition before anything runs.

Structure is checked by pydantic when the definition is parsed; this module
checks what needs more: that the store and source exist, that every mapping,
transform, expression, DN and filter compiles, that the source has the
fields the mappings read, and that the destination schema has the
attributes and object classes the job writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idsync.connectors.base import DirectorySchema, Source
from idsync.connectors.sql import read_only_query
from idsync.domain.containers import container_attrs
from idsync.domain.definitions import JobDefinition
from idsync.domain.dn import parse_dn
from idsync.domain.filters import parse_filter
from idsync.engine.context import RunContext
from idsync.engine.mapping import Mapper
from idsync.errors import ConfigError, IdsyncError, NotFoundError
from idsync.services import connections, definitions
from idsync.services.workspace import Workspace


def check_offline(ws: Workspace, job: JobDefinition, pending: Mapping[str, set[str]] | None = None) -> None:
    """Everything that needs no connection; raises ConfigError naming the job.

    *pending* names stores and sources about to be saved with the job (from
    the same file), which count as existing.
    """
    label = f"job {job.name!r}"
    src = job.source
    origin = ("store", src.store) if src.store is not None else ("source", src.data_source)
    stores: dict[str, Any] = {}
    for kind, name in (("store", job.destination.store), origin):
        assert name is not None
        if pending and name in pending.get(kind, set()):
            continue
        try:
            loaded = definitions.load(ws, kind, name)  # type: ignore[arg-type]
        except NotFoundError as exc:
            raise ConfigError(f"{label}: {exc.message}") from exc
        if kind == "store":
            stores[name] = loaded.definition
    _check_destination_store(label, job, stores.get(job.destination.store))
    dest = job.destination
    dns = {"destination.container": dest.container, "destination.base_dn": dest.base_dn}
    dns["source.base_dn"] = src.base_dn
    dns["actions.move_to"] = job.actions.move_to
    for m in job.mappings:
        if m.resolve is not None:
            dns[f"mapping {m.attribute!r} resolve.base_dn"] = m.resolve.base_dn
    for where, dn in dns.items():
        if dn is not None:
            try:
                parse_dn(dn)
            except ConfigError as exc:
                raise ConfigError(f"{label}: {where}: {exc.message}") from exc
    if dest.create_container and dest.store in stores:
        try:
            container_attrs(dest.container, getattr(stores[dest.store], "flavor", "generic"))
        except ConfigError as exc:
            raise ConfigError(
                f"{label}: destination.create_container: {exc.message}", field="destination.container", hint=exc.hint
            ) from exc
    filters = {"destination.filter": dest.filter, "source.filter": src.filter if src.store else None}
    filters.update({f"mapping {m.attribute!r} resolve.filter": m.resolve.filter for m in job.mappings if m.resolve})
    for where, text in filters.items():
        if text:
            try:
                parse_filter(text)
            except ConfigError as exc:
                raise ConfigError(f"{label}: {where}: {exc.message}") from exc
    try:
        Mapper(job, RunContext.create(job.name, readable=job.environment))
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc.message}") from exc
    _check_password_source(ws, label, job)


def _check_password_source(ws: Workspace, label: str, job: JobDefinition) -> None:
    """``passwords`` without fixed or generate is a fixed password stored
    before (an exported job leaves it out): it must exist."""
    spec = job.passwords
    if spec is None or spec.fixed is not None or spec.generate is not None:
        return
    try:
        stored = definitions.load(ws, "job", job.name).secrets
    except (NotFoundError, ConfigError):
        stored = {}
    if "passwords.fixed" not in stored:
        raise ConfigError(
            f"{label}: passwords needs fixed (a secret, or env:NAME) or generate (length and character rules)"
        )


def _check_destination_store(label: str, job: JobDefinition, store: Any) -> None:
    """What depends on the kind of destination store. *store* None (not saved
    yet) skips these checks; they run again before every preview and run."""
    if store is None:
        return
    ad = getattr(store, "flavor", "generic") == "active_directory"
    if job.actions.on_missing == "disable" and job.actions.disable_with is None and not ad:
        raise ConfigError(
            f"{label}: on_missing: disable needs disable_with (attribute and value) on store "
            f"{store.name!r}; only an Active Directory store (flavor: active_directory) disables accounts by itself"
        )
    encrypted = getattr(store, "start_tls", False) or str(getattr(store, "url", "")).lower().startswith("ldaps://")
    written = [m.attribute for m in job.mappings] + ([job.passwords.attribute] if job.passwords else [])
    if ad and not encrypted and any(name.lower() == "unicodepwd" for name in written):
        raise ConfigError(
            f"{label}: unicodePwd can only be written over an encrypted connection, and store "
            f"{store.name!r} has none: use an ldaps:// URL or start_tls: true"
        )


def check_connected(ws: Workspace, job: JobDefinition) -> str | None:
    """The checks of a job that read its source and its destination store: the
    fields its mappings read (:func:`check_source_fields`) and the attributes
    and classes it writes (:func:`check_schema`). Done when a job is saved, so
    a misspelt field is refused then, not found by the first run at night.

    A job that fails them raises ConfigError. When the source or the store
    cannot be read (a server down, a file not there yet), the job cannot be
    checked: the text of a warning saying why is returned, and the checks run
    again before every preview and run. None when the job was checked.
    """
    try:
        with connections.job_destination(ws, job) as directory, connections.job_source(ws, job) as source:
            columns = source_columns(source)
            schema = directory.schema()
    except (IdsyncError, OSError) as exc:
        cause = exc.message if isinstance(exc, IdsyncError) else str(exc)
        return (
            f"job {job.name!r}: saved without checking its fields against {job.source.label} and store "
            f"{job.destination.store!r}, which cannot be read: {cause}; they are checked before each run"
        )
    check_fields(job, columns)
    check_schema(job, schema)
    return None


def source_columns(source: Source) -> list[str] | None:
    """The source's column names, when it knows them before reading; else None."""
    columns_of = getattr(source, "columns", None)
    found = columns_of() if columns_of is not None else None
    return list(found) if found is not None else None


def check_source_fields(job: JobDefinition, source: Source) -> None:
    """Every field a mapping reads must be a column of the source (when the
    source knows its columns before reading)."""
    check_fields(job, source_columns(source))


def check_fields(job: JobDefinition, columns: list[str] | None) -> None:
    """Every field a mapping reads must be one of *columns* (None: not known, not checked)."""
    if columns is None:
        return
    known = set(columns)
    for m in job.mappings:
        used = [m.source] if m.source is not None else list(m.join.fields) if m.join else []
        for name in used:
            if name not in known:
                raise ConfigError(
                    f"job {job.name!r}: mapping {m.attribute!r} reads field {name!r}, which "
                    f"{job.source.label} does not have (fields: {', '.join(columns)})"
                )
    stamp = job.changed_by.timestamp_field if job.changed_by and job.update_mode == "changed" else None
    if stamp is not None and stamp not in known:
        raise ConfigError(
            f"job {job.name!r}: changed_by.timestamp_field {stamp!r} is not a field of "
            f"{job.source.label} (fields: {', '.join(columns)})"
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
    if job.passwords is not None:
        extra.add(job.passwords.attribute)
    for m in job.mappings:
        if m.resolve is not None and schema.attribute(m.resolve.attribute) is None:
            raise ConfigError(
                f"{label}: mapping {m.attribute!r} resolves by {m.resolve.attribute!r}, which is not in "
                f"the schema of store {job.destination.store!r}"
            )
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


def check_source(source: Any) -> None:
    """Checks of a data source that need no connection: a SQL source's query
    must be one read-only statement (refused when saved, not only when run)."""
    if getattr(source, "kind", None) == "sql" and source.query:
        try:
            read_only_query(source.query)
        except ConfigError as exc:
            raise ConfigError(f"data source {source.name!r}: {exc.message}") from exc
