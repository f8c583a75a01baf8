"""Saving, loading and removing the definitions of stores, sources and jobs.

A definition is stored as its JSON body with the secret fields taken out and
encrypted separately. Loading puts them back (for connecting); exporting
leaves them out, except ``env:NAME`` references, which are not secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from idsync.domain.definitions import (
    JobDefinition,
    SourceDefinition,
    StoreDefinition,
    is_env_reference,
)
from idsync.errors import ConfigError
from idsync.services.workspace import Workspace
from idsync.store.definitions_repo import DefinitionRepository

Kind = Literal["store", "source", "job"]

NOUNS: dict[str, str] = {"store": "identity store", "source": "data source", "job": "sync job"}

_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "store": TypeAdapter(StoreDefinition),
    "source": TypeAdapter(SourceDefinition),
    "job": TypeAdapter(JobDefinition),
}


@dataclass(frozen=True)
class Loaded:
    """A stored definition with its secrets (plain or ``env:`` references)."""

    id: int
    definition: Any
    secrets: dict[str, str]


def format_validation_error(exc: ValidationError, what: str) -> str:
    """One line naming the field of the first problem, e.g.
    ``job 'hr': mappings.2.attribute: Field required``."""
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return f"{what}: " + "; ".join(parts) + more


def parse(kind: Kind, data: Any, what: str | None = None) -> Any:
    """Validate *data* as a definition of *kind*; ConfigError naming the field otherwise."""
    try:
        return _ADAPTERS[kind].validate_python(data)
    except ValidationError as exc:
        name = data.get("name") if isinstance(data, dict) else None
        label = what or (f"{NOUNS[kind]} {name!r}" if name else NOUNS[kind])
        raise ConfigError(format_validation_error(exc, label)) from exc


def secret_fields(definition: Any) -> tuple[str, ...]:
    return tuple(getattr(definition, "SECRET_FIELDS", ()))


def public_body(definition: Any) -> dict[str, Any]:
    """The definition as plain data, without secrets and without default values."""
    body: dict[str, Any] = definition.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    body["name"] = definition.name
    if "kind" in type(definition).model_fields:
        body["kind"] = definition.kind
    for name in secret_fields(definition):
        body.pop(name, None)
    return body


def save(ws: Workspace, kind: Kind, definition: Any) -> str:
    """Create or update a definition; returns "created", "updated" or "unchanged".

    A secret field left empty keeps the secret stored before, so an exported
    file (which has no secrets) can be applied again safely.
    """
    with ws.db.session() as session:
        repo = DefinitionRepository(session, kind, box=ws.secrets)
        existing = repo.get(definition.name)
        secrets = ws.secrets.decrypt(existing.secrets_token) if existing else {}
        for name in secret_fields(definition):
            value = getattr(definition, name)
            if value:
                secrets[name] = value
        token = ws.secrets.encrypt(secrets)
        return repo.put(definition.name, getattr(definition, "kind", ""), public_body(definition), token, ws.actor)


def load(ws: Workspace, kind: Kind, name: str) -> Loaded:
    """The definition named *name*, with its secrets restored."""
    with ws.db.session() as session:
        stored = DefinitionRepository(session, kind).require(name)
        secrets = ws.secrets.decrypt(stored.secrets_token)
    definition = parse(kind, {**stored.body, **secrets})
    return Loaded(stored.id, definition, secrets)


def list_definitions(ws: Workspace, kind: Kind) -> list[Any]:
    """All definitions of *kind*, by name, without their secrets."""
    with ws.db.session() as session:
        rows = DefinitionRepository(session, kind).list()
    return [parse(kind, row.body) for row in rows]


def users_of(ws: Workspace, kind: Kind, name: str) -> list[str]:
    """Names of the jobs that use the store or source *name*."""
    if kind == "job":
        return []
    users = []
    for job in list_definitions(ws, "job"):
        uses = job.destination.store if kind == "store" else job.source.data_source
        if uses == name:
            users.append(job.name)
    return users


def remove(ws: Workspace, kind: Kind, name: str) -> None:
    """Remove a definition; a store or source still used by a job is refused.
    The run history of a removed job is kept."""
    users = users_of(ws, kind, name)
    if users:
        raise ConfigError(
            f"{NOUNS[kind]} {name!r} is used by job(s) {', '.join(users)}; remove or change them first"
        )
    with ws.db.session() as session:
        repo = DefinitionRepository(session, kind)
        repo.require(name)
        repo.remove(name, ws.actor)


def exportable(ws: Workspace, kind: Kind, name: str) -> dict[str, Any]:
    """The definition as an export shows it: secrets left out, env references kept."""
    loaded = load(ws, kind, name)
    body = public_body(loaded.definition)
    for field_name, value in loaded.secrets.items():
        if is_env_reference(value):
            body[field_name] = value
    return body
