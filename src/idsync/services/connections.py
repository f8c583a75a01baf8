"""Opening connections to identity stores and data sources by name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from idsync.connectors.base import Directory, Source, factory_for
from idsync.services import definitions
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
def directory(ws: Workspace, name: str) -> Iterator[Directory]:
    """The identity store *name*, connected lazily and closed afterwards."""
    loaded = definitions.load(ws, "store", name)
    conn = open_store(loaded.definition, loaded.secrets)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def source(ws: Workspace, name: str) -> Iterator[Source]:
    """The data source *name*, closed afterwards."""
    loaded = definitions.load(ws, "source", name)
    conn = open_source(loaded.definition, loaded.secrets)
    try:
        yield conn
    finally:
        conn.close()


def test_store(ws: Workspace, name: str) -> str:
    """Connect to the store and describe it in one line (or raise a ConnectorError)."""
    with directory(ws, name) as conn:
        return conn.test()


def test_source(ws: Workspace, name: str) -> str:
    with source(ws, name) as conn:
        return conn.test()
