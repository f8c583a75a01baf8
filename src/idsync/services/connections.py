"""Opening connections to identity stores and data sources by name."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from idsync.connectors.base import Directory, Source, factory_for
from idsync.connectors.directory_source import DN_FIELD, DirectorySource
from idsync.domain.definitions import JobDefinition
from idsync.engine.containers import PlannedContainers
from idsync.engine.expressions import compile_expression
from idsync.services import authz, definitions
from idsync.services.workspace import Workspace
from idsync.store.secrets import resolve_secret


def _resolved(secrets: dict[str, str]) -> dict[str, str]:
    return {name: resolve_secret(value) for name, value in secrets.items()}


def open_store(definition: Any, secrets: dict[str, str]) -> Directory:
    directory: Directory = factory_for(definition.kind)(definition, _resolved(secrets))
    return directory


def open_source(definition: Any, secrets: dict[str, str]) -> Source:
    source: Source = factory_for(definition.kind)(definition, _resolved(secrets))
    return source


@contextmanager
def _opened(conn: Any) -> Iterator[Any]:
    try:
        yield conn
    finally:
        conn.close()


def directory(ws: Workspace, name: str) -> AbstractContextManager[Directory]:
    """The identity store *name*, connected lazily and closed afterwards."""
    loaded = definitions.load(ws, "store", name)
    return _opened(open_store(loaded.definition, loaded.secrets))


def job_destination(
    ws: Workspace, job: JobDefinition, assumed: Collection[str] = ()
) -> AbstractContextManager[Directory]:
    """The destination store of *job*, closed afterwards, as the job's plan
    sees it: with ``create_container`` its container (and missing parents) is
    planned as creates and searching it finds nothing until it exists; so are
    the *assumed* entries (DNs that earlier jobs of a collection create)."""
    loaded = definitions.load(ws, "store", job.destination.store)
    directory = open_store(loaded.definition, loaded.secrets)
    dest = job.destination
    if dest.create_container or assumed:
        directory = PlannedContainers(directory, dest.container if dest.create_container else None, assumed)
    return _opened(directory)


def source(ws: Workspace, name: str) -> AbstractContextManager[Source]:
    """The data source *name*, closed afterwards."""
    loaded = definitions.load(ws, "source", name)
    return _opened(open_source(loaded.definition, loaded.secrets))


@contextmanager
def job_source(ws: Workspace, job: JobDefinition) -> Iterator[Source]:
    """The records of *job*: its data source, or the entries its source store
    holds under the source's base DN (closed afterwards)."""
    spec = job.source
    if spec.store is None:
        assert spec.data_source is not None
        with source(ws, spec.data_source) as records:
            yield records
        return
    assert spec.base_dn is not None
    loaded = definitions.load(ws, "store", spec.store)
    records = DirectorySource(
        open_store(loaded.definition, loaded.secrets),
        spec.base_dn,
        scope=spec.scope,
        filterstr=spec.filter,
        attributes=spec.attributes if spec.attributes is not None else fields_read(job),
        separator=spec.multi_value_separator,
        label=f"job source {spec.label}",
    )
    try:
        yield records
    finally:
        records.close()


def fields_read(job: JobDefinition) -> list[str]:
    """The source fields the job's mappings read by name (``from``, ``join``,
    and ``source["..."]`` in expressions): what a store source reads when the
    job lists no attributes."""
    names: list[str] = []
    for m in job.mappings:
        if m.source is not None:
            names.append(m.source)
        elif m.join is not None:
            names.extend(m.join.fields)
        elif m.expression is not None:
            names.extend(sorted(compile_expression(m.expression, f"mapping {m.attribute!r}").fields))
    return list(dict.fromkeys(n for n in names if n.lower() != DN_FIELD))


def test_store(ws: Workspace, name: str) -> str:
    """Connect to the store and describe it in one line (or raise a ConnectorError)."""
    authz.require_reader(ws, "stores")
    with directory(ws, name) as conn:
        return conn.test()


def test_source(ws: Workspace, name: str) -> str:
    authz.require_reader(ws, "sources")
    with source(ws, name) as conn:
        return conn.test()
